"""SLA deadlines counted in business hours, in the maker's time zone.

First-response and resolution targets depend on priority, plus extra time for the level
(an expert team or an on-site visit takes longer to arrange). Hours outside the working day,
and days off, do not count; while a ticket waits for the customer the clock is paused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from .. import timeutil

DEFAULT_TARGETS: dict[str, tuple[float, float]] = {
    # priority: (first response, resolution), in business hours
    "urgent": (1, 8),
    "high": (2, 16),
    "normal": (4, 27),  # three working days
    "low": (8, 45),
}
DEFAULT_LEVEL_EXTRA: dict[str, float] = {"L1": 0, "L2": 0, "L3": 9, "onsite": 18}


@dataclass(frozen=True)
class Calendar:
    """The working week: which days, which hours, in which zone."""

    zone: ZoneInfo
    start: time
    end: time
    days: frozenset[int]  # ISO weekdays, 1 = Monday

    def is_open(self, local: datetime) -> bool:
        """Whether ``local`` (in the zone) falls in working hours."""
        return local.isoweekday() in self.days and self.start <= local.time() < self.end


def timezone() -> ZoneInfo:
    """The maker's time zone (``TIMEZONE``, default Asia/Shanghai)."""
    return timeutil.local_zone()


def calendar() -> Calendar:
    """The configured business hours (``SLA_BUSINESS_HOURS``, ``SLA_BUSINESS_DAYS``)."""
    cfg = current_app.config
    start_s, end_s = str(cfg.get("SLA_BUSINESS_HOURS") or "09:00-18:00").split("-")
    days = _days(str(cfg.get("SLA_BUSINESS_DAYS") or "1-5"))
    return Calendar(timezone(), time.fromisoformat(start_s), time.fromisoformat(end_s), days)


def _days(spec: str) -> frozenset[int]:
    out: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.update(range(int(a), int(b) + 1))
        elif part.strip():
            out.add(int(part))
    return frozenset(d for d in out if 1 <= d <= 7)


def targets() -> dict[str, tuple[float, float]]:
    """Business hours per priority, from ``SLA_TARGETS`` (JSON) or the defaults."""
    raw = current_app.config.get("SLA_TARGETS") or ""
    if not raw:
        return dict(DEFAULT_TARGETS)
    data = json.loads(raw) if isinstance(raw, str) else raw
    merged = dict(DEFAULT_TARGETS)
    merged.update({k: (float(v[0]), float(v[1])) for k, v in data.items()})
    return merged


def level_extra() -> dict[str, float]:
    """Extra business hours of resolution per level, from ``SLA_LEVEL_EXTRA_HOURS`` (JSON)."""
    raw = current_app.config.get("SLA_LEVEL_EXTRA_HOURS") or ""
    data = json.loads(raw) if isinstance(raw, str) and raw else (raw or {})
    merged = dict(DEFAULT_LEVEL_EXTRA)
    merged.update({k: float(v) for k, v in data.items()})
    return merged


def add_business_hours(start: datetime, hours: float, cal: Calendar | None = None) -> datetime:
    """``start`` plus ``hours`` of working time; the result is in UTC."""
    cal = cal or calendar()
    remaining = timedelta(hours=hours)
    local = start.astimezone(cal.zone)
    for _ in range(3700):  # ten years of days: a bound, never reached with sane settings
        day_start = local.replace(
            hour=cal.start.hour, minute=cal.start.minute, second=0, microsecond=0
        )
        day_end = local.replace(hour=cal.end.hour, minute=cal.end.minute, second=0, microsecond=0)
        if local.isoweekday() in cal.days and local < day_end:
            begin = max(local, day_start)
            available = day_end - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        local = (local + timedelta(days=1)).replace(
            hour=cal.start.hour, minute=cal.start.minute, second=0, microsecond=0
        )
    raise ValueError("no business hours configured")


def business_hours_between(a: datetime, b: datetime, cal: Calendar | None = None) -> float:
    """Working hours between two moments (0 when ``b`` is not after ``a``)."""
    cal = cal or calendar()
    if b <= a:
        return 0.0
    total = timedelta()
    local = a.astimezone(cal.zone)
    end = b.astimezone(cal.zone)
    while local < end:
        day_start = local.replace(
            hour=cal.start.hour, minute=cal.start.minute, second=0, microsecond=0
        )
        day_end = local.replace(hour=cal.end.hour, minute=cal.end.minute, second=0, microsecond=0)
        if local.isoweekday() in cal.days:
            begin, finish = max(local, day_start), min(end, day_end)
            if finish > begin:
                total += finish - begin
        local = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return total.total_seconds() / 3600


def deadlines(opened: datetime, priority: str, level: str) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket opened at ``opened``."""
    first, resolution = targets()[priority]
    extra = level_extra().get(level, 0.0)
    cal = calendar()
    return (
        add_business_hours(opened, first, cal),
        add_business_hours(opened, resolution + extra, cal),
    )
