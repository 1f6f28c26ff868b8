"""The maker's calendar: "today" and local times in ``TIMEZONE`` (default Asia/Shanghai).

Warranty ends, installation dates and date pickers are dates on the maker's calendar, not UTC's:
at 07:30 in Beijing it is still yesterday in UTC, and a warranty that ended yesterday must not
show as covered. Timestamps stay in UTC; only calendar dates go through here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context

DEFAULT_TIMEZONE = "Asia/Shanghai"


@cache
def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; raises ValueError for names the tz database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use a name like Asia/Shanghai)") from exc


def local_zone() -> ZoneInfo:
    """The app's ``TIMEZONE`` (the default zone outside an app context)."""
    name = DEFAULT_TIMEZONE
    if has_app_context():
        name = current_app.config.get("TIMEZONE") or DEFAULT_TIMEZONE
    return zone(name)


def now(at: datetime | None = None) -> datetime:
    """The current (or the given aware) time on the maker's clock."""
    return (at or datetime.now(UTC)).astimezone(local_zone())


def today(at: datetime | None = None) -> date:
    """Today's date on the maker's calendar (or the date there at the aware time ``at``)."""
    return now(at).date()
