"""Staff accounts: the CLI, login, roles, CSRF, session expiry, rate limits, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from kefu import staff
from kefu.audit import AuditEntry
from kefu.extensions import db
from kefu.staff import ApiToken, Staff

from .conftest import PASSWORD, form_token, make_staff, new_client, sign_in


def test_staff_cli_add_list_disable_and_tokens(app: Flask, runner: FlaskCliRunner) -> None:
    added = runner.invoke(
        args=["staff", "add", "Wang.Li", "--role", "supervisor", "--group", "cameras"],
        input="a-long-password\n",
    )
    assert added.exit_code == 0, added.output
    assert "wang.li (supervisor, cameras)" in added.output
    with app.app_context():
        member = staff.by_username("wang.li")
        assert member is not None and member.password_hash != "a-long-password"
        assert member.check_password("a-long-password")
    again = runner.invoke(args=["staff", "add", "wang.li"], input="a-long-password\n")
    assert again.exit_code != 0 and "username is taken" in again.output
    short = runner.invoke(args=["staff", "add", "zhao"], input="short\n")
    assert short.exit_code != 0 and "至少" in short.output
    listed = runner.invoke(args=["staff", "list"])
    assert "wang.li\tsupervisor\tactive\tcameras" in listed.output
    token = runner.invoke(args=["staff", "token", "wang.li"]).output.strip()
    assert token.startswith("kefu_") and len(token) > 40
    with app.app_context():
        [row] = db.session.scalars(select(ApiToken)).all()
        assert row.token_hash != token and token not in row.token_hash  # only the hash is kept
        assert staff.by_token(token) is not None
    revoked = runner.invoke(args=["staff", "token", "wang.li", "--revoke"])
    assert "revoked 1 tokens" in revoked.output
    with app.app_context():
        assert staff.by_token(token) is None
    token2 = runner.invoke(args=["staff", "token", "wang.li"]).output.strip()
    disabled = runner.invoke(args=["staff", "disable", "wang.li"])
    assert disabled.exit_code == 0
    with app.app_context():
        assert staff.authenticate("wang.li", "a-long-password") is None
        assert staff.by_token(token2) is None
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert {"staff.add", "staff.token_issue", "staff.token_revoke", "staff.disable"} <= set(actions)
    assert "disabled" in runner.invoke(args=["staff", "list"]).output
    missing = runner.invoke(args=["staff", "disable", "nobody"])
    assert missing.exit_code != 0 and "no account named nobody" in missing.output


def test_every_console_page_needs_a_login(app: Flask, agent: int) -> None:
    client = new_client(app)
    for path in (
        "/console/",
        "/console/tickets",
        "/console/kb",
        "/console/reports",
        "/console/c/1",
        "/console/queue.json",
        "/console/devices",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/console/login" in response.headers["Location"]
    sign_in(client, "alice")
    page = client.get("/console/")
    assert page.status_code == 200 and "等待人工" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "private, no-store"


def test_wrong_password_and_disabled_accounts_are_refused(app: Flask, agent: int) -> None:
    client = new_client(app)
    token = form_token(client, "/console/login")
    bad = client.post(
        "/console/login", data={"username": "alice", "password": "nope", "csrf_token": token}
    )
    assert bad.status_code == 400 and "用户名或密码不正确" in bad.get_data(as_text=True)
    with app.app_context():
        staff.disable(db.session.get(Staff, agent))
        db.session.commit()
    off = client.post(
        "/console/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert off.status_code == 400


def test_a_disabled_account_loses_its_open_session(app: Flask, agent: int) -> None:
    client = new_client(app)
    sign_in(client, "alice")
    with app.app_context():
        staff.disable(db.session.get(Staff, agent))
        db.session.commit()
    assert client.get("/console/").status_code == 302


def test_forms_need_the_csrf_token(app: Flask, agent: int) -> None:
    client = new_client(app)
    sign_in(client, "alice")
    response = client.post("/console/duty", data={"on": "0"})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)


def test_sessions_expire_after_idle_minutes(app: Flask, agent: int) -> None:
    client = new_client(app)
    sign_in(client, "alice")
    with client.session_transaction() as session:
        data = session["console_staff"]
        data["seen"] = (datetime.now(UTC) - timedelta(minutes=121)).timestamp()
        session["console_staff"] = data
    assert client.get("/console/").status_code == 302
    sign_in(client, "alice")
    with client.session_transaction() as session:
        data = session["console_staff"]
        data["at"] = (datetime.now(UTC) - timedelta(hours=13)).timestamp()
        session["console_staff"] = data
    assert client.get("/console/").status_code == 302


def test_login_is_rate_limited(app: Flask, agent: int) -> None:
    client = new_client(app)
    token = form_token(client, "/console/login")
    codes = [
        client.post(
            "/console/login", data={"username": "alice", "password": "wrong", "csrf_token": token}
        ).status_code
        for _ in range(6)
    ]
    assert codes[:5] == [400] * 5 and codes[5] == 429


def test_supervisor_pages_refuse_agents(app: Flask, agent: int) -> None:
    client = new_client(app)
    sign_in(client, "alice")
    assert client.get("/console/canned").status_code == 403
    make_staff(app, "sue", role="supervisor")
    boss = new_client(app)
    sign_in(boss, "sue")
    token = form_token(boss, "/console/canned")
    boss.post(
        "/console/canned",
        data={"csrf_token": token, "title": "问候", "text": "您好，请问有什么可以帮您？"},
    )
    assert "您好，请问有什么可以帮您？" in boss.get("/console/canned").get_data(as_text=True)


def test_going_on_and_off_duty(app: Flask) -> None:
    member = make_staff(app, "erin", on_duty=False)
    client = new_client(app)
    sign_in(client, "erin")
    assert "离岗状态" in client.get("/console/").get_data(as_text=True)
    token = form_token(client, "/console/")
    client.post("/console/duty", data={"csrf_token": token, "on": "1"})
    with app.app_context():
        assert db.session.get(Staff, member).on_duty is True


def test_the_console_speaks_english_on_request(app: Flask, agent: int) -> None:
    client = new_client(app)
    sign_in(client, "alice")
    html = client.get("/console/?lang=en").get_data(as_text=True)
    assert "Waiting for a person" in html and "等待人工" not in html


def test_supervisors_set_groups_and_duty_admins_roles_and_disable(app: Flask, agent: int) -> None:
    make_staff(app, "sue", role="supervisor")
    make_staff(app, "ann", role="admin")
    boss = new_client(app)
    sign_in(boss, "sue")
    token = form_token(boss, "/console/team")
    response = boss.post(
        f"/console/team/{agent}",
        data={"csrf_token": token, "groups": ["cameras", "installers"], "on_duty": "1"},
    )
    assert response.status_code == 302
    with app.app_context():
        member = db.session.get(Staff, agent)
        assert member.groups == ["cameras", "installers"] and member.on_duty
    # A supervisor cannot hand out roles; an admin can, and can disable.
    assert (
        boss.post(
            f"/console/team/{agent}",
            data={"csrf_token": token, "groups": ["cameras"], "role": "admin"},
        ).status_code
        == 403
    )
    admin = new_client(app)
    sign_in(admin, "ann")
    token = form_token(admin, "/console/team")
    admin.post(
        f"/console/team/{agent}",
        data={"csrf_token": token, "groups": ["cameras"], "role": "supervisor", "disable": "1"},
    )
    with app.app_context():
        member = db.session.get(Staff, agent)
        assert member.role == "supervisor" and not member.active and not member.on_duty
        assert "staff.update" in db.session.scalars(select(AuditEntry.action)).all()
    empty = admin.post(f"/console/team/{agent}", data={"csrf_token": token}, follow_redirects=True)
    assert "至少选择一个技能组" in empty.get_data(as_text=True)
    agent_client = new_client(app)
    make_staff(app, "joe")
    sign_in(agent_client, "joe")
    assert agent_client.get("/console/team").status_code == 403
