"""Installer accounts: register -> pending -> staff approve on the CLI -> login; and the bot."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from kefu import accounts, dialog
from kefu.extensions import db

from .conftest import (
    INSTALLER_PASSWORD,
    INSTALLER_PHONE,
    Catalog,
    csrf_from,
    log_in,
    make_installer,
)


def register(client: FlaskClient, **fields: str) -> tuple[int, str]:
    data = {
        "phone": "138 0013 8000",
        "password": "secret-pass",
        "name": "李工",
        "company": "上海安防工程有限公司",
    }
    data.update(fields)
    data["csrf_token"] = csrf_from(client, "/installer/register")
    response = client.post("/installer/register", data=data)
    return response.status_code, response.get_data(as_text=True)


def login(client: FlaskClient, phone: str, password: str) -> tuple[int, str]:
    token = csrf_from(client, "/installer/login")
    response = client.post(
        "/installer/login", data={"phone": phone, "password": password, "csrf_token": token}
    )
    return response.status_code, response.get_data(as_text=True)


def test_register_wait_for_approval_then_log_in(
    client: FlaskClient, runner: FlaskCliRunner, catalog: Catalog
) -> None:
    status, html = register(client)
    assert status == 200 and "注册已提交" in html

    status, html = login(client, "13800138000", "secret-pass")
    assert "账号正在审核中" in html
    assert "/installer/login" in client.get("/installer/batch").headers["Location"]

    listed = runner.invoke(args=["installers", "list", "--status", "pending"])
    assert listed.exit_code == 0 and "13800138000" in listed.output and "李工" in listed.output

    approved = runner.invoke(args=["installers", "approve", "13800138000"])
    assert approved.exit_code == 0 and "approved" in approved.output

    status, _ = login(client, "13800138000", "secret-pass")
    assert status == 302
    assert 'id="installer"' in client.get(f"/d/{catalog.in_warranty.token}").get_data(as_text=True)


def test_rejected_account_cannot_log_in(client: FlaskClient, runner: FlaskCliRunner) -> None:
    register(client)
    assert runner.invoke(args=["installers", "reject", "13800138000"]).exit_code == 0
    status, html = login(client, "13800138000", "secret-pass")
    assert status == 403 and "未通过审核" in html
    assert client.get("/installer/batch").status_code == 302


def test_cli_names_an_unknown_phone(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["installers", "approve", "13999999999"])
    assert result.exit_code == 1 and "13999999999" in result.output


def test_registration_errors_are_clear_and_store_nothing(app: Flask, client: FlaskClient) -> None:
    app.config["LOGIN_LIMIT"] = "100/minute"  # this test is about the messages, not the limit
    cases = {
        "请填写 11 位手机号": {"phone": "12345"},
        "密码至少 8 位": {"password": "short"},
        "请填写姓名": {"name": "  "},
        "请填写公司名称": {"company": ""},
    }
    for message, fields in cases.items():
        status, html = register(client, **fields)
        assert status == 400 and message in html, message
    with app.app_context():
        assert accounts.by_phone("13800138000") is None
    register(client)
    status, html = register(client, name="另一个人")
    assert status == 400 and "该手机号已注册" in html


def test_wrong_phone_and_wrong_password_look_the_same(client: FlaskClient, installer: int) -> None:
    wrong_password = login(client, INSTALLER_PHONE, "not-the-password")
    unknown_phone = login(client, "13912345678", INSTALLER_PASSWORD)
    assert wrong_password[0] == unknown_phone[0] == 400
    assert "手机号或密码不正确" in wrong_password[1] and "手机号或密码不正确" in unknown_phone[1]


def test_login_is_rate_limited(client: FlaskClient, installer: int) -> None:
    statuses = [login(client, INSTALLER_PHONE, f"guess-{i}")[0] for i in range(6)]
    assert statuses[:5] == [400] * 5 and statuses[5] == 429
    # Even the right password waits now: guessing cannot continue at full speed.
    status, html = login(client, INSTALLER_PHONE, INSTALLER_PASSWORD)
    assert status == 429 and "查询太频繁" in html


def test_login_returns_to_the_page_that_asked(client: FlaskClient, installer: int) -> None:
    redirect = client.get("/installer/batch")
    assert redirect.status_code == 302
    login_url = redirect.headers["Location"]
    token = csrf_from(client, login_url)
    response = client.post(
        login_url,
        data={"phone": INSTALLER_PHONE, "password": INSTALLER_PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/installer/batch"
    # Never off-site, whatever ``next`` says.
    client.post("/installer/logout", data={"csrf_token": csrf_from(client, "/installer/batch")})
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        token = csrf_from(client, "/installer/login")
        response = client.post(
            "/installer/login",
            data={
                "phone": INSTALLER_PHONE,
                "password": INSTALLER_PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert "evil.example" not in response.headers["Location"], target
        client.post("/installer/logout", data={"csrf_token": csrf_from(client, "/installer/batch")})


def test_logout(client: FlaskClient, catalog: Catalog, installer: int) -> None:
    log_in(client)
    url = f"/d/{catalog.in_warranty.token}"
    token = csrf_from(client, url)
    assert client.post("/installer/logout", data={"csrf_token": token}).status_code == 302
    assert 'id="installer"' not in client.get(url).get_data(as_text=True)


def test_bot_gives_installer_answers_to_a_bound_approved_installer(app: Flask) -> None:
    make_installer(app, openid="o_installer")
    make_installer(app, phone="13800000002", status="pending", openid="o_pending")
    with app.app_context():
        assert dialog.audiences_for("o_installer") == dialog.INSTALLER
        assert dialog.audiences_for("o_pending") == dialog.END_USER
        assert dialog.audiences_for("o_stranger") == dialog.END_USER
        account = accounts.by_phone(INSTALLER_PHONE)
        assert account is not None
        accounts.reject(account)
        db.session.commit()
        assert dialog.audiences_for("o_installer") == dialog.END_USER
