"""Ticket models: the ticket, its validation runs, and devices reported stolen or revoked."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.models import Device
from ..extensions import db
from ..models import UTCDateTime, utcnow


class TicketState(StrEnum):
    """Where a ticket is in its life."""

    NEW = "new"
    VALIDATED = "validated"
    ASSIGNED = "assigned"
    WAITING_CUSTOMER = "waiting_customer"  # the SLA clock is paused
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATES = (
    TicketState.NEW,
    TicketState.VALIDATED,
    TicketState.ASSIGNED,
    TicketState.WAITING_CUSTOMER,
)


class Level(StrEnum):
    """Support levels as the maker runs them."""

    L1 = "L1"  # self-service and the bot
    L2 = "L2"  # specialist
    L3 = "L3"  # expert team
    ONSITE = "onsite"  # on-site service


class Priority(StrEnum):
    """How soon the ticket must be answered and solved."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class RequestType(StrEnum):
    """What the customer asks for."""

    REPAIR = "repair"  # 报修 / 维修: paid or free depending on the warranty
    WARRANTY = "warranty"  # 申请保修: an in-warranty claim
    EXCHANGE = "exchange"  # 换货


class Channel(StrEnum):
    """Where a request came in."""

    CHAT = "chat"
    WEB = "web"
    STAFF = "staff"


def _check(column: str, enum: type[StrEnum]) -> Any:
    values = ", ".join(f"'{v.value}'" for v in enum)
    return db.CheckConstraint(f"{column} IN ({values})", name=column)


class Ticket(db.Model):  # type: ignore[name-defined]
    """A service request that passed the robot's checks, for a person to decide on."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)  # KF-20261201-7K3Q-X
    # The status page's link: random, unrelated to the number, so numbers cannot be walked.
    status_token: Mapped[str] = mapped_column(String(43), unique=True)
    state: Mapped[str] = mapped_column(String(20), default=TicketState.NEW, index=True)
    level: Mapped[str] = mapped_column(String(8), default=Level.L2)
    # The agent working the ticket (kefu.staff); None while it waits in the queue.
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"), index=True
    )
    # Set while the assignee was given the ticket (by routing or a colleague) and has not taken
    # it yet; the sweep moves it on after TICKET_REASSIGN_MINUTES (kefu.handoffs).
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL)
    request_type: Mapped[str] = mapped_column(String(16), default=RequestType.REPAIR)
    channel: Mapped[str] = mapped_column(String(8), default=Channel.CHAT)
    # The WeChat user, for status queries and notifications; cleared when they unfollow.
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    model_code: Mapped[str | None] = mapped_column(String(64))
    fault: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(20), default="", index=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    purchase_date: Mapped[date | None] = mapped_column(Date)
    # Every field as the agent sees it, with where it came from: {"name": {"value", "source"}}.
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # SHA-256 of the proof-of-purchase photo (stored by content hash outside the web root).
    proof_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    first_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    # Set when a WeChat notification could not be sent (48-hour window closed, quota): the
    # customer must be reached another way, e.g. by phone.
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))

    device: Mapped[Device | None] = relationship()
    runs: Mapped[list[ValidationRun]] = relationship(
        back_populates="ticket", order_by="ValidationRun.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        _check("state", TicketState),
        _check("level", Level),
        _check("priority", Priority),
        _check("request_type", RequestType),
        _check("channel", Channel),
        # The console's ticket queue: most urgent deadline first, read in index order.
        db.Index("ix_tickets_queue", "resolution_due", "id"),
    )

    @property
    def is_open(self) -> bool:
        """Not yet resolved or closed."""
        return self.state in OPEN_STATES


class ValidationRun(db.Model):  # type: ignore[name-defined]
    """One run of the validation engine over a request: every rule, outcome and value seen."""

    __tablename__ = "validation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(80), default="bot")
    ok: Mapped[bool] = mapped_column(Boolean)
    # [{"code", "severity", "outcome", "field", "message", "seen"}] for every rule that ran.
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Field names filled by the system (registry, warranty rule, earlier requests).
    autofilled: Mapped[list[str]] = mapped_column(JSON, default=list)
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="runs")


class DeviceReportKind(StrEnum):
    """Why a device must not be serviced without a second look."""

    STOLEN = "stolen"
    REVOKED = "revoked"  # e.g. a grey-market unit whose registration the maker withdrew


class DeviceReport(db.Model):  # type: ignore[name-defined]
    """A device reported stolen or revoked; a request for it is flagged for the agent."""

    __tablename__ = "device_reports"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (_check("kind", DeviceReportKind),)


class RequestForm(db.Model):  # type: ignore[name-defined]
    """A request being filled in over chat, one field at a time; stored, never kept in memory."""

    __tablename__ = "request_forms"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_type: Mapped[str] = mapped_column(String(16), default=RequestType.REPAIR)
    # The field being asked for, "confirm" at the summary, "" while the user is elsewhere.
    step: Mapped[str] = mapped_column(String(32), default="")
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Field name -> where its value came from: "user", "registry", "previous", "scan", "photo".
    sources: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # After a correction, the summary comes back instead of the next empty field.
    correcting: Mapped[bool] = mapped_column(Boolean, default=False)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    # A label or proof photo being read in the background (its MediaId).
    pending_media: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (_check("request_type", RequestType),)
