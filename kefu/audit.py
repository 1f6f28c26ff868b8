"""The audit log: who changed what, when, from what to what. Append-only, kept for compliance.

There is no update or delete path in the code, and on PostgreSQL a trigger refuses both, so an
entry stays as written even for someone with database access through the app's role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db
from .models import UTCDateTime, utcnow

# Who acts: "staff:<username>", "installer:<account id>", "bot", "customer", "system".
ACTOR_KINDS = ("staff:", "bot", "customer", "system")
ACTOR_PREFIXES = ("staff:", "installer:")


class AuditEntry(db.Model):  # type: ignore[name-defined]
    """One change, as it happened; never edited."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (db.Index("ix_audit_log_target", "target_type", "target_id"),)


def record(
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str | None = None,
) -> AuditEntry:
    """Append an entry to the session (the caller commits with the change it describes)."""
    named = any(actor.startswith(p) and len(actor) > len(p) for p in ACTOR_PREFIXES)
    if not named and actor not in ACTOR_KINDS[1:]:
        raise ValueError(
            f"unknown actor {actor!r}: use staff:NAME, installer:ID, bot, customer or system"
        )
    entry = AuditEntry(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=_jsonable(before),
        after=_jsonable(after),
        note=note,
        at=utcnow(),
    )
    db.session.add(entry)
    return entry


def history(target_type: str, target_id: str) -> list[AuditEntry]:
    """Every entry about one target, oldest first."""
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = str(value)
        out[key] = value
    return out
