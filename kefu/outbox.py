"""Outbound WeChat customer-service messages, through an outbox table.

A message is a row first, added in the caller's transaction, and sent by a background job after
that transaction commits, so nothing is sent for work that was rolled back. The job claims the
row before calling WeChat (pending -> sending, one conditional UPDATE), so a retry of the job or
a second worker never sends it twice; a message whose fate is unknown after a crash stays
"sending" and is reported, not resent. WeChat's final refusals are recorded and not retried:

- 45015: the user has not written within 48 hours (customer-service messages are allowed only
  inside that window);
- 45047: too many messages to this user since they last wrote;
- 48001: the account has no permission for the API.

Network errors and the daily quota (45009) are retried with backoff and end as ``failed``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from flask import current_app
from sqlalchemy import Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from . import jobs
from .extensions import db
from .models import ChatMessage, UTCDateTime, utcnow
from .wechat import WeChatApiError

log = logging.getLogger(__name__)

# WeChat's customer-service messages are allowed for 48 hours after the user's last message.
WINDOW = timedelta(hours=48)
FINAL_ERRORS = {
    45015: "超过48小时未互动，无法发送客服消息",
    45047: "客服消息条数已达上限",
    48001: "公众号没有客服消息接口权限",
}
MAX_ATTEMPTS = 5


class OutboxStatus(StrEnum):
    """Where an outbound message is: waiting, being sent, delivered, or given up."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # transient errors until the attempts ran out
    FINAL = "final"  # WeChat refused for good (window closed, too many, permission)


class OutboxMessage(db.Model):  # type: ignore[name-defined]
    """One customer-service text message to one user."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Cleared, with the text, when the user unfollows.
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))  # ticket_state, label_result, agent_reply
    ref: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. a ticket number
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        db.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'final')", name="status"
        ),
    )


def enqueue_text(openid: str, text: str, *, purpose: str, ref: str | None = None) -> OutboxMessage:
    """Add a message to the session; it is sent by a background job after the caller commits."""
    message = OutboxMessage(
        openid=openid,
        text=text[:2000],
        purpose=purpose[:32],
        ref=ref[:64] if ref else None,
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=utcnow(),
    )
    db.session.add(message)
    db.session.flush()
    jobs.after_commit(send, message.id)
    return message


def last_inbound(openid: str) -> datetime | None:
    """When the user last wrote to the account (a message or menu click), from the transcript."""
    return db.session.scalar(
        select(func.max(ChatMessage.created_at)).where(
            ChatMessage.openid == openid, ChatMessage.direction == "in"
        )
    )


def window_open(openid: str, now: datetime | None = None) -> bool:
    """Whether WeChat still allows customer-service messages to this user (48-hour window)."""
    last = last_inbound(openid)
    return last is not None and (now or datetime.now(UTC)) - last < WINDOW


def send(message_id: int) -> None:
    """Job: send one outbox message, once. Raises on a transient error so the queue retries."""
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
        )
        .values(status=OutboxStatus.SENDING, attempts=OutboxMessage.attempts + 1)
    ).rowcount
    db.session.commit()
    if not claimed:
        return  # already sent, being sent, or given up: a retry must not send again
    message = db.session.get(OutboxMessage, message_id)
    assert message is not None
    if not message.openid:
        _finish(message, OutboxStatus.FINAL, None, "用户已取消关注")
        return
    from .integrations import api_client

    try:
        api_client().send_text(message.openid, message.text)
    except RuntimeError as exc:  # no official account configured: nothing can ever be sent
        _finish(message, OutboxStatus.FINAL, None, str(exc))
        return
    except WeChatApiError as exc:
        code = getattr(exc, "code", None)
        if code in FINAL_ERRORS or getattr(exc, "retryable", True) is False:
            _finish(message, OutboxStatus.FINAL, code, FINAL_ERRORS.get(code or 0, str(exc)))
            _notify_final(message)
            return
        limit = int(current_app.config.get("OUTBOX_MAX_ATTEMPTS", MAX_ATTEMPTS))
        attempts_left = message.attempts < limit
        status = OutboxStatus.PENDING if attempts_left else OutboxStatus.FAILED
        _finish(message, status, code, str(exc)[:500])
        if attempts_left:
            raise
        return
    message.status = OutboxStatus.SENT
    message.sent_at = utcnow()
    message.error_code = None
    message.error_message = None
    db.session.commit()


def _finish(message: OutboxMessage, status: str, code: int | None, error: str) -> None:
    message.status = status
    message.error_code = code
    message.error_message = error[:500]
    db.session.commit()


def _notify_final(message: OutboxMessage) -> None:
    """Tell the message's ticket, if any, that the customer must be reached another way."""
    if message.ref and message.purpose.startswith("ticket"):
        from .tickets import service

        service.customer_unreachable(message.ref, message.error_code, message.error_message)
        db.session.commit()


def sweep(now: datetime | None = None) -> int:
    """Re-queue pending messages whose job was lost (a queue outage); returns how many."""
    now = now or datetime.now(UTC)
    stale = now - timedelta(minutes=10)
    ids = list(
        db.session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.created_at < stale
            )
        )
    )
    for message_id in ids:
        jobs.enqueue(send, message_id)
    return len(ids)


def forget(openid: str) -> None:
    """The user unfollowed: their messages lose recipient and text (sent ones are kept as
    counts for reports)."""
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.openid == openid).values(openid=None, text="")
    )
