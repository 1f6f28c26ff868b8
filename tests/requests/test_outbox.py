"""The outbox against the fake WeChat API: sent once, retried on transient errors, final on
WeChat's refusals (45015 window closed), and the ticket told to reach the customer otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from kefu import audit, outbox, tickets
from kefu.extensions import db
from kefu.models import ChatMessage
from tests.wechat_api import FakeWeChatApi

from .conftest import sent_texts
from .test_tickets import make_ticket

SEND = "/cgi-bin/message/custom/send"


def test_sent_after_commit_and_never_twice(app: Flask, fake_api: FakeWeChatApi) -> None:
    with app.app_context():
        message = outbox.enqueue_text("o_out", "您好", purpose="test", ref="x")
        message_id = message.id
        assert sent_texts(fake_api, "o_out") == []  # nothing before the commit
        db.session.commit()
        assert sent_texts(fake_api, "o_out") == ["您好"]
        outbox.send(message_id)  # a retry of the job, or a second worker
        assert sent_texts(fake_api, "o_out") == ["您好"]
        row = db.session.get(outbox.OutboxMessage, message_id)
        assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None


def test_rolled_back_work_sends_nothing(app: Flask, fake_api: FakeWeChatApi) -> None:
    with app.app_context():
        outbox.enqueue_text("o_rb", "不该发送", purpose="test")
        db.session.rollback()
        db.session.commit()
    assert sent_texts(fake_api, "o_rb") == []


def test_transient_error_is_retried_then_sent(app: Flask, fake_api: FakeWeChatApi) -> None:
    fake_api.errors[SEND] = [-1]  # "system busy"
    with app.app_context():
        message_id = outbox.enqueue_text("o_busy", "稍后", purpose="test").id
        db.session.commit()  # the eager job fails once (the queue would retry it)
        row = db.session.get(outbox.OutboxMessage, message_id)
        assert row.status == "pending" and row.error_code == -1
        outbox.send(message_id)  # the retry
        db.session.refresh(row)
        assert row.status == "sent" and row.attempts == 2
    # Two calls reached WeChat: the refused one and the one that went through.
    assert sent_texts(fake_api, "o_busy") == ["稍后", "稍后"]


def test_window_closed_is_final_and_the_ticket_says_call(
    app: Flask, fake_api: FakeWeChatApi
) -> None:
    fake_api.always_errors[SEND] = 45015
    with app.app_context():
        ticket = make_ticket("o_gone")
        db.session.add(
            ChatMessage(openid="o_gone", direction="in", text="在吗", created_at=datetime.now(UTC))
        )
        db.session.commit()
        tickets.transition(ticket, "assigned", "staff:alice")
        db.session.commit()
        row = db.session.scalars(
            select(outbox.OutboxMessage).where(outbox.OutboxMessage.ref == ticket.number)
        ).one()
        assert row.status == "final" and row.error_code == 45015 and row.attempts == 1
        outbox.send(row.id)  # never retried
        assert len([c for c in fake_api.calls if c[0] == SEND]) == 1
        db.session.refresh(ticket)
        assert ticket.unreachable_since is not None and "45015" in ticket.unreachable_reason
        notes = [e.note or "" for e in audit.history("ticket", ticket.number)]
        assert any("其他方式联系" in n for n in notes)


def test_outside_the_window_nothing_is_sent(app: Flask, fake_api: FakeWeChatApi) -> None:
    with app.app_context():
        ticket = make_ticket("o_old")
        db.session.add(
            ChatMessage(
                openid="o_old",
                direction="in",
                text="你好",
                created_at=datetime.now(UTC) - timedelta(hours=49),
            )
        )
        db.session.commit()
        tickets.transition(ticket, "assigned", "staff:bob")
        db.session.commit()
        assert ticket.unreachable_since is not None
        assert db.session.scalar(select(outbox.OutboxMessage.id)) is None
    assert sent_texts(fake_api, "o_old") == []
