"""The staff console (``/console``) and the staff API (``/api/v1``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask

from kefu.handoffs import duty
from kefu.i18n import localized

from . import auth, conversations, devices, knowledge, reports, team, tickets, video
from .api import bp as api_bp
from .blueprint import bp

__all__ = [
    "api_bp",
    "auth",
    "bp",
    "conversations",
    "devices",
    "init_app",
    "knowledge",
    "reports",
    "team",
    "tickets",
    "video",
]


def console_time(value: datetime | None) -> str:
    """A timestamp in the maker's time zone, as agents read it."""
    if value is None:
        return "-"
    return value.astimezone(duty().tz).strftime("%m-%d %H:%M")


def state_label(state: str) -> str:
    """A ticket state in the page's language."""
    from kefu.tickets import STATE_LABELS

    pair = STATE_LABELS.get(state)
    return localized(pair[0], pair[1]) if pair else state


def audit_change(entry: Any) -> str:
    """An audit entry's change as people read it: "state new → assigned"."""
    before, after = entry.before or {}, entry.after or {}
    parts = []
    for key, value in after.items():
        if key in before:
            parts.append(f"{key} {before[key]} → {value}")
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def init_app(app: Flask) -> None:
    """Register the console and the API on ``app``."""
    from kefu.extensions import csrf

    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # The API checks its own credentials: a bearer token, or the session with X-CSRFToken.
    csrf.exempt(api_bp)
    app.add_template_filter(console_time, "console_time")
    app.add_template_global(state_label, "state_label")
    app.add_template_filter(audit_change, "audit_change")
