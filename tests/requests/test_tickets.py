"""Tickets: numbers, states and reopening, SLA in business hours, the audit log, privacy."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from kefu import audit, tickets
from kefu.extensions import db
from kefu.tickets import numbers, sla
from kefu.tickets.models import Ticket

from .conftest import Catalog, say


def make_ticket(
    openid: str | None = "o_t", serial: str = "AS2024C3H000001", **extra: object
) -> Ticket:
    """A ticket opened the way the request flow opens one (the caller commits)."""
    values = {"contact_name": "张三丰", "phone": "13917384526", "address": "杭州市文三路1号"}
    values.update(extra)  # type: ignore[arg-type]
    return tickets.open_ticket(
        actor="customer",
        values={},
        channel="chat",
        openid=openid,
        serial=serial,
        model_code="AS-C3H",
        fault="画面发黑",
        **values,
    )


def test_numbers_are_readable_checked_and_random() -> None:
    day = datetime(2026, 12, 1).date()
    made = {numbers.generate(day) for _ in range(200)}
    # 20 random bits a day: 200 draws repeat one about 2% of the time (a new ticket's number
    # is checked against the used ones), three or more about once in a million.
    assert len(made) >= 198
    number = made.pop()
    assert number.startswith("KF-20261201-") and len(number) == 18
    assert numbers.normalise(number.lower().replace("-", " ")) == number
    body = number[3:11] + number[12:16]
    for i, char in enumerate(number[12:16]):
        other = next(c for c in numbers.ALPHABET if c != char)
        mistyped = number[: 12 + i] + other + number[13 + i :]
        assert numbers.normalise(mistyped) is None, mistyped
    assert numbers.check_char(body) == number[-1]


def test_sla_counts_business_hours_in_shanghai(app: Flask) -> None:
    with app.app_context():
        # Friday 17:00 Beijing time + 4 business hours = Monday 12:00.
        friday = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
        due = sla.add_business_hours(friday, 4)
        assert due == datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
        assert sla.business_hours_between(friday, due) == pytest.approx(4)
        app.config["SLA_BUSINESS_DAYS"] = "1-6"
        assert sla.add_business_hours(friday, 4) == datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
        first, resolution = sla.deadlines(friday, "urgent", "onsite")
        assert first < resolution


def test_states_audit_and_reopen_window(app: Flask) -> None:
    with app.app_context():
        ticket = make_ticket(None)
        db.session.commit()
        tickets.transition(ticket, "validated", "bot")
        tickets.transition(ticket, "assigned", "staff:alice", "接单")
        with pytest.raises(tickets.TicketError):
            tickets.transition(ticket, "new", "staff:alice")
        tickets.set_level(ticket, "L3", "staff:alice", "需要专家")
        tickets.set_priority(ticket, "high", "staff:alice")
        tickets.transition(ticket, "resolved", "staff:alice", "已更换主板")
        tickets.transition(ticket, "assigned", "staff:alice", "客户反馈仍有问题")
        assert ticket.reopened == 1 and ticket.resolved_at is None
        tickets.transition(ticket, "closed", "staff:alice")
        ticket.closed_at = ticket.resolved_at = datetime.now(UTC) - timedelta(days=30)
        with pytest.raises(tickets.TicketError):
            tickets.transition(ticket, "assigned", "staff:alice")
        db.session.commit()
        actions = [
            (e.actor, e.action)
            for e in audit.history("ticket", ticket.number)
            if e.action != "ticket.customer_unreachable"
        ]
        assert actions[:3] == [
            ("customer", "ticket.open"),
            ("bot", "ticket.state"),
            ("staff:alice", "ticket.state"),
        ]
        assert ("staff:alice", "ticket.level") in actions
        assert ("staff:alice", "ticket.reopen") in actions
        with pytest.raises(ValueError):
            audit.record("alice", "x", "ticket", "1")


def test_the_audit_log_cannot_be_edited(app: Flask) -> None:
    with app.app_context():
        audit.record("system", "test", "ticket", "KF-1")
        db.session.commit()
        for statement in ("UPDATE audit_log SET note = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"):
                db.session.execute(text(statement))
                db.session.flush()
            db.session.rollback()


def test_waiting_for_the_customer_pauses_the_clock(app: Flask) -> None:
    with app.app_context():
        ticket = make_ticket(None)
        monday = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 Beijing
        ticket.resolution_due = sla.add_business_hours(monday, 8)
        before = ticket.resolution_due
        tickets.transition(ticket, "waiting_customer", "staff:alice", "请补充购买凭证", now=monday)
        tickets.transition(ticket, "assigned", "staff:alice", now=monday + timedelta(hours=3))
        assert ticket.resolution_due == sla.add_business_hours(before, 3)


def test_ticket_queries_show_only_ones_own(app: Flask, catalog: Catalog) -> None:
    with app.app_context():
        mine = make_ticket("o_me")
        theirs = make_ticket("o_them", serial=catalog.out_of_warranty.serial)
        db.session.commit()
        mine_no, theirs_no = mine.number, theirs.number
    reply = say(app, "o_me", "查询工单")
    assert mine_no in reply and theirs_no not in reply and "/t/" in reply
    assert mine_no in say(app, "o_me", f"我的报修到哪了 {mine_no}")
    # Someone else's number, a made-up one and a mistyped one all get the same answer.
    answers = {say(app, "o_me", theirs_no), say(app, "o_me", numbers.generate(datetime.now(UTC)))}
    answers.add(say(app, "o_me", theirs_no[:-1] + ("A" if theirs_no[-1] != "A" else "B")))
    assert len(answers) == 1 and theirs_no not in answers.pop()
    assert "还没有工单" in say(app, "o_new", "我的工单")


def test_status_page_masks_and_cannot_be_walked(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        ticket = make_ticket("o_page")
        tickets.transition(ticket, "validated", "bot", notify=False)
        db.session.commit()
        token, number = ticket.status_token, ticket.number
    html = client.get(f"/t/{token}").get_data(as_text=True)
    assert number in html and "已审核" in html and "<progress" in html
    assert "139****4526" in html and "张**" in html
    assert "13917384526" not in html and "文三路" not in html
    assert client.get(f"/t/{secrets.token_urlsafe(32)}").status_code == 404
    assert client.get(f"/t/{number}").status_code == 404
    assert "private" in client.get(f"/t/{token}").headers["Cache-Control"]


def test_cli_list_show_and_stats(app: Flask, runner: FlaskCliRunner) -> None:
    import json

    with app.app_context():
        ticket = make_ticket(None)
        tickets.transition(ticket, "validated", "bot", notify=False)
        db.session.commit()
        number = ticket.number
    listed = runner.invoke(args=["tickets", "list", "--state", "validated"])
    assert listed.exit_code == 0 and number in listed.output
    assert number not in runner.invoke(args=["tickets", "list", "--state", "closed"]).output
    shown = runner.invoke(args=["tickets", "show", number.lower()])
    assert shown.exit_code == 0 and "ticket.open" in shown.output and "张三丰" in shown.output
    missing = runner.invoke(args=["tickets", "show", "KF-20261201-0000-0"])
    assert missing.exit_code != 0 and "no such ticket" in missing.output
    result = runner.invoke(args=["stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["tickets"] == 1 and stats["tickets_validated"] == 1
    assert {"messages", "handoffs", "unanswered", "jobs_failed"} <= set(stats)


def test_unfollow_removes_forms_and_contact_of_closed_tickets(app: Flask, catalog: Catalog) -> None:
    from kefu import dialog
    from kefu.tickets.models import RequestForm

    say(app, "o_bye", "报修")
    say(app, "o_bye", catalog.in_warranty.serial)
    with app.app_context():
        open_ticket = make_ticket("o_bye", serial=catalog.ship_only.serial)
        closed = make_ticket("o_bye", serial=catalog.no_dates.serial)
        tickets.transition(closed, "closed", "staff:alice", notify=False)
        db.session.commit()
        dialog.forget_user("o_bye")
        db.session.commit()
        assert db.session.get(RequestForm, "o_bye") is None
        db.session.refresh(open_ticket)
        db.session.refresh(closed)
        assert open_ticket.openid is None and open_ticket.phone == "13917384526"
        assert closed.openid is None and closed.phone == "" and closed.contact_name == ""
        assert "13917384526" not in str(closed.fields)


def test_sla_sweep_records_each_missed_deadline_once(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        ticket = make_ticket(None)
        ticket.first_response_due = datetime.now(UTC) - timedelta(hours=1)
        db.session.commit()
        number = ticket.number
    first = runner.invoke(args=["tickets", "sweep"])
    assert first.exit_code == 0 and "sla_breached 1" in first.output
    assert "sla_breached 0" in runner.invoke(args=["tickets", "sweep"]).output
    with app.app_context():
        notes = [
            e.note for e in audit.history("ticket", number) if e.action == "ticket.sla_breached"
        ]
        assert notes == ["first_response"]
