"""Database models of the core: knowledge base, WeChat users, conversations and handoffs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


def utcnow() -> datetime:
    """Timezone-aware now, used as a column default."""
    return datetime.now(UTC)


class UTCDateTime(db.TypeDecorator):  # type: ignore[name-defined]
    """A timestamp that always comes back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use datetime.now(UTC)")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class KbEntry(db.Model):  # type: ignore[name-defined]
    """One knowledge-base entry: a question, its other phrasings and the answer sent as written."""

    __tablename__ = "kb_entries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    alternates: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(16), default="all")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Setting(db.Model):  # type: ignore[name-defined]
    """A small shared key/value row: KB revision, WeChat access token when there is no Redis."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Subscriber(db.Model):  # type: ignore[name-defined]
    """A follower of the official account; the row is deleted when they unfollow."""

    __tablename__ = "subscribers"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscribed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Scene of the parametric QR code they followed through (``qrscene_`` prefix removed).
    scene: Mapped[str | None] = mapped_column(String(64))
    last_scene: Mapped[str | None] = mapped_column(String(64))


class Conversation(db.Model):  # type: ignore[name-defined]
    """Dialog state per user, kept in the database so it survives restarts and spans workers."""

    __tablename__ = "conversations"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # KB ids offered as a numbered list, awaiting a digit.
    pending_choices: Mapped[list[str] | None] = mapped_column(JSON)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # Set while a person owns the conversation; the bot stays quiet until it ends.
    human_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The device the user is talking about, last recognised from a scanned device link
    # (``dialog.set_device``); deleted with the conversation when they unfollow.
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    device_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A request form is open (kefu.requests.chat): only then is the form table read, so an
    # ordinary message costs no extra query.
    form_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ChatMessage(db.Model):  # type: ignore[name-defined]
    """One line of a transcript, in either direction."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # An outgoing line written by a person in the console (else the bot's).
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))


class Handoff(db.Model):  # type: ignore[name-defined]
    """A conversation handed to a person, with why and what was said before."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Cleared (with the transcript) when the user unfollows.
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    transcript: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The console's side (kefu.handoffs): the skill group it was routed to, who it is offered to
    # or owned by, and the times its deadlines are measured by.
    group: Mapped[str | None] = mapped_column(String(32))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"), index=True
    )
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_reason: Mapped[str | None] = mapped_column(String(16))

    # The console's queue: open handoffs, oldest first.
    __table_args__ = (db.Index("ix_handoffs_queue", "status", "created_at"),)


class UnansweredQuestion(db.Model):  # type: ignore[name-defined]
    """A question the bot could not answer, for the knowledge-base team (no user attached)."""

    __tablename__ = "unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    best_guess: Mapped[str | None] = mapped_column(String(64))  # closest KB id, if any
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Set when staff turned the question into KB content (kefu.unanswered).
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kb_entry_id: Mapped[str | None] = mapped_column(String(64))


class InboundMessage(db.Model):  # type: ignore[name-defined]
    """A delivery from WeChat, kept so retries of it are processed once and get the same reply."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # MsgId for messages; sender + CreateTime + event for events (they have no MsgId).
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    reply: Mapped[str | None] = mapped_column(Text)  # plaintext reply XML, "" for "success"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookNonce(db.Model):  # type: ignore[name-defined]
    """A signed (timestamp, nonce) pair seen on ``/wechat`` and the delivery it carried.

    Without Redis this table keeps a signed URL from being used for a second delivery inside
    the signature window; rows older than the window are pruned.
    """

    __tablename__ = "webhook_nonces"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)  # "timestamp:nonce"
    delivery: Mapped[str] = mapped_column(String(160))  # its dedupe key and "|aes" or "|raw"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
