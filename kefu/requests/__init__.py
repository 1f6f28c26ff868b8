"""Service requests checked by a robot: the chat form, the validation engine, label and proof
photos. The tickets they produce live in :mod:`kefu.tickets`."""

from __future__ import annotations

from datetime import datetime

from ..tickets import service as _tickets
from . import chat


def forget(openid: str) -> None:
    """The user unfollowed: drop their open form; tickets keep only what they must."""
    chat.forget(openid)
    _tickets.forget(openid)
    from .. import outbox

    outbox.forget(openid)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Job: form reminders and expiry, SLA breaches, lost outbox jobs; what each did."""
    from .. import outbox
    from ..extensions import db

    reminded, expired = chat.sweep(now)
    breached = _tickets.sla_sweep(now)
    db.session.commit()
    requeued = outbox.sweep(now)
    return {
        "reminded": reminded,
        "expired": expired,
        "sla_breached": breached,
        "outbox_requeued": requeued,
    }


__all__ = ["chat", "forget", "sweep"]
