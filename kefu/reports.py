"""Figures for the console's reports page and its CSV: what the bot and the people achieved.

Containment is the share of the bot's conversations (a user's messages on one day) that ended
without a person and without the user coming back within 24 hours about the same thing.
Settled days are counted once into ``report_days`` (by the page or the sweep's
:func:`roll_up`); only yesterday and today are counted from the transcript on each view.
Nothing here commits.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Date, Integer, String, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Mapped, mapped_column

from . import unanswered
from .csat import CsatRating
from .extensions import db, insert_for
from .models import ChatMessage, Handoff, Setting, UTCDateTime, utcnow
from .timeutil import local_zone

RETURN_WINDOW = timedelta(hours=24)
SETTLE_MARGIN = timedelta(minutes=15)
# Yesterday's and today's containment is recounted at most this often (the rest is settled).
LIVE_TTL = timedelta(minutes=5)


@dataclass
class Report:
    """Every figure of the reports page for one period."""

    since: datetime
    until: datetime
    messages_by_day: list[tuple[str, int, int]] = field(default_factory=list)  # day, in, out
    sessions: int = 0
    contained: int = 0
    handoffs_by_reason: Counter[str] = field(default_factory=Counter)
    handoff_pickup_minutes: float | None = None
    handoff_pickup_met: tuple[int, int] = (0, 0)  # within the pickup target, of claimed
    ticket_first_response_met: tuple[int, int] = (0, 0)
    ticket_resolution_met: tuple[int, int] = (0, 0)
    ticket_first_response_hours: float | None = None  # medians, wall-clock hours
    ticket_resolution_hours: float | None = None
    tickets_by_model_fault: list[tuple[str, str, int]] = field(default_factory=list)
    csat_scores: Counter[int] = field(default_factory=Counter)
    csat_asked: int = 0
    top_unanswered: list[tuple[str, int]] = field(default_factory=list)

    @property
    def containment(self) -> float | None:
        """Share of bot sessions contained, 0..1."""
        return self.contained / self.sessions if self.sessions else None

    @property
    def csat_average(self) -> float | None:
        """Mean score of the answered ratings."""
        total = sum(self.csat_scores.values())
        return sum(k * v for k, v in self.csat_scores.items()) / total if total else None


class ReportDay(db.Model):  # type: ignore[name-defined]
    """One settled local day's figures, computed once (messages and containment).

    A day is settled when the next day is over too: by then no handoff and no return within
    24 hours can change its sessions. The rows outlive the transcript they were counted from.
    """

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))  # TIMEZONE the day was counted in
    messages_in: Mapped[int] = mapped_column(Integer)
    messages_out: Mapped[int] = mapped_column(Integer)
    sessions: Mapped[int] = mapped_column(Integer)
    contained: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _midnight(day: date) -> datetime:
    """The start of ``day`` on the maker's calendar, in UTC."""
    return datetime.combine(day, time(0), local_zone()).astimezone(UTC)


def last_settled_day(now: datetime) -> date:
    """The latest local day whose figures can no longer change."""
    today = now.astimezone(local_zone()).date()
    day = today - timedelta(days=2)
    # Late writes (a spooled message handled after an outage) get a margin.
    if now < _midnight(today) + SETTLE_MARGIN:
        day -= timedelta(days=1)
    return day


def build(now: datetime, days: int = 14) -> Report:
    """The report for the last ``days`` local days, today included, up to ``now``."""
    today = now.astimezone(local_zone()).date()
    first = today - timedelta(days=max(1, days) - 1)
    report = Report(since=_midnight(first), until=now)
    settled = last_settled_day(now)
    stored = settled_days(first, min(settled, today))
    live_from = max(first, settled + timedelta(days=1))
    live_start = _midnight(live_from)
    counts = _message_counts(live_start, now) if live_from <= today else {}
    contained = _live_containment(live_start, now) if live_from <= today else {}
    for row in stored.values():
        counts[row.day] = [row.messages_in, row.messages_out]
        contained[row.day] = [row.sessions, row.contained]
    report.messages_by_day = [
        (d.strftime("%m-%d"), c[0], c[1]) for d, c in sorted(counts.items()) if c[0] or c[1]
    ]
    report.sessions = sum(v[0] for v in contained.values())
    report.contained = sum(v[1] for v in contained.values())
    _handoffs(report)
    _tickets(report)
    _csat(report)
    report.top_unanswered = [(g.text, g.count) for g in unanswered.groups(now, days=days, limit=10)]
    return report


def _live_containment(start: datetime, now: datetime) -> dict[date, list[int]]:
    """Containment of the days not yet settled, counted at most every LIVE_TTL (shared row)."""
    key = f"reports:live:{local_zone().key}"
    row = db.session.get(Setting, key)
    if row is not None and row.expires_at is not None and row.expires_at > now:
        cached = json.loads(row.value)
        if cached.get("start") == start.isoformat():
            return {date.fromisoformat(d): v for d, v in cached["days"].items()}
    counted = _containment_by_day(start, now, now)
    value = json.dumps(
        {"start": start.isoformat(), "days": {d.isoformat(): v for d, v in counted.items()}}
    )
    table = Setting.__table__
    stmt = insert_for(table).values(key=key, value=value, expires_at=now + LIVE_TTL)
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
        )
    )
    return counted


def settled_days(first: date, last: date) -> dict[date, ReportDay]:
    """The rollup rows of settled days ``first``..``last``, computing the missing ones."""
    if last < first:
        return {}
    zone = local_zone().key
    rows = {
        r.day: r
        for r in db.session.scalars(
            select(ReportDay).where(
                ReportDay.day >= first, ReportDay.day <= last, ReportDay.zone == zone
            )
        )
    }
    missing = [
        first + timedelta(days=i)
        for i in range((last - first).days + 1)
        if first + timedelta(days=i) not in rows
    ]
    if missing:
        rows.update(_compute_days(min(missing), max(missing)))
    return rows


def roll_up(now: datetime, keep_days: int = 90, batch: int = 3) -> int:
    """Compute a few missing settled days (newest first), so report pages find them ready."""
    last = last_settled_day(now)
    first = last - timedelta(days=keep_days - 1)
    have = set(
        db.session.scalars(
            select(ReportDay.day).where(
                ReportDay.day >= first, ReportDay.day <= last, ReportDay.zone == local_zone().key
            )
        )
    )
    missing = [
        last - timedelta(days=i) for i in range(keep_days) if last - timedelta(days=i) not in have
    ][:batch]
    if missing:
        _compute_days(min(missing), max(missing))
    return len(missing)


def _compute_days(first: date, last: date) -> dict[date, ReportDay]:
    """Count the settled days ``first``..``last`` from the transcript and store them."""
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    counts = _message_counts(start, end)
    contained = _containment_by_day(start, end, end + RETURN_WINDOW + timedelta(minutes=1))
    zone = local_zone().key
    computed = datetime.now(UTC)
    values = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        msgs = counts.get(day, [0, 0])
        sess = contained.get(day, [0, 0])
        values.append(
            {
                "day": day,
                "zone": zone,
                "messages_in": msgs[0],
                "messages_out": msgs[1],
                "sessions": sess[0],
                "contained": sess[1],
                "computed_at": computed,
            }
        )
    table = ReportDay.__table__
    stmt = insert_for(table).values(values)
    # Two workers may count the same day at once; the figures are the same.
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.day],
        set_={k: stmt.excluded[k] for k in values[0] if k != "day"},
    )
    db.session.execute(stmt)
    return {v["day"]: ReportDay(**v) for v in values}


def _postgres() -> bool:
    return bool(db.session.get_bind().dialect.name == "postgresql")


def _message_counts(start: datetime, end: datetime) -> dict[date, list[int]]:
    """Messages in and out per local day in [start, end)."""
    zone = local_zone()
    window = (ChatMessage.created_at >= start, ChatMessage.created_at < end)
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    if _postgres():
        # Counted by the database: a month of a busy account is millions of rows.
        day = func.date(func.timezone(zone.key, ChatMessage.created_at))
        rows = db.session.execute(
            select(day, ChatMessage.direction, func.count())
            .where(*window)
            .group_by(day, ChatMessage.direction)
        )
        for at, direction, n in rows:
            counts[at][0 if direction == "in" else 1] += int(n)
    else:
        for at, direction in db.session.execute(
            select(ChatMessage.created_at, ChatMessage.direction).where(*window)
        ):
            counts[at.astimezone(zone).date()][0 if direction == "in" else 1] += 1
    return counts


# One user's messages on one local day: (openid, day, first at, last at, texts in order).
Session = tuple[str, date, datetime, datetime, list[str]]


def _sessions(start: datetime, end: datetime) -> list[Session]:
    """Each user's inbound messages in [start, end) grouped by local day, by user and day."""
    zone = local_zone()
    window = (
        ChatMessage.direction == "in",
        ChatMessage.created_at >= start,
        ChatMessage.created_at < end,
    )
    text = func.substr(ChatMessage.text, 1, 80)
    if _postgres():
        # Grouped by the database: one row per session instead of one per message.
        day = func.date(func.timezone(zone.key, ChatMessage.created_at))
        rows = db.session.execute(
            select(
                ChatMessage.openid,
                day,
                func.min(ChatMessage.created_at),
                func.max(ChatMessage.created_at),
                func.array_agg(aggregate_order_by(text, ChatMessage.created_at)),
            )
            .where(*window)
            .group_by(ChatMessage.openid, day)
            .order_by(ChatMessage.openid, day)
        )
        return [(o, d, _aware(a), _aware(b), list(t or [])) for o, d, a, b, t in rows]
    out: list[Session] = []
    for openid, at, said in db.session.execute(
        select(ChatMessage.openid, ChatMessage.created_at, text)
        .where(*window)
        .order_by(ChatMessage.openid, ChatMessage.created_at)
    ):
        day = at.astimezone(zone).date()
        if out and out[-1][0] == openid and out[-1][1] == day:
            last = out[-1]
            out[-1] = (openid, day, last[2], at, [*last[4], said or ""])
        else:
            out.append((openid, day, at, at, [said or ""]))
    return out


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _containment_by_day(start: datetime, end: datetime, horizon: datetime) -> dict[date, list[int]]:
    """[sessions, contained] per local day, for sessions starting in [start, end).

    Messages up to ``horizon`` are read, so a return on the same topic within 24 hours counts.
    """
    handed: dict[str, list[datetime]] = defaultdict(list)
    for openid, at in db.session.execute(
        select(Handoff.openid, Handoff.created_at).where(
            Handoff.created_at >= start,
            Handoff.created_at < horizon,
            Handoff.openid.is_not(None),
        )
    ):
        handed[openid].append(at)
    by_user: dict[str, list[Session]] = defaultdict(list)
    for session in _sessions(start, horizon):
        by_user[session[0]].append(session)
    out: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for openid, user_sessions in by_user.items():
        grams: dict[int, set[str]] = {}

        def of(
            i: int, sessions: list[Session] = user_sessions, cache: dict[int, set[str]] = grams
        ) -> set[str]:
            # A session's bigrams, computed only when a later session has to be compared.
            if i not in cache:
                cache[i] = set().union(*(unanswered.bigrams(t or "") for t in sessions[i][4]))
            return cache[i]

        times = handed.get(openid, [])
        for i, (_, day, first_at, last_at, _texts) in enumerate(user_sessions):
            if first_at >= end:
                continue
            out[day][0] += 1
            if any(first_at <= h <= last_at + timedelta(minutes=1) for h in times):
                continue
            returned = False
            for j in range(i + 1, len(user_sessions)):
                if user_sessions[j][2] - last_at > RETURN_WINDOW:
                    break
                if unanswered.similar(of(i), of(j)):
                    returned = True
                    break
            if not returned:
                out[day][1] += 1
    return out


def _handoffs(report: Report) -> None:
    rows = db.session.execute(
        select(Handoff.reason, Handoff.created_at, Handoff.claimed_at).where(
            Handoff.created_at >= report.since, Handoff.created_at < report.until
        )
    ).all()
    report.handoffs_by_reason = Counter(r for r, _, _ in rows)
    target = timedelta(minutes=current_app.config["HANDOFF_PICKUP_MINUTES"])
    waits = [c - s for _, s, c in rows if c is not None]
    if waits:
        report.handoff_pickup_minutes = statistics.median(w.total_seconds() for w in waits) / 60
    report.handoff_pickup_met = (sum(1 for w in waits if w <= target), len(waits))


def _tickets(report: Report) -> None:
    from .tickets import Ticket

    window = (Ticket.created_at >= report.since, Ticket.created_at < report.until)
    if _postgres():
        # Medians and deadline counts by the database: a busy period is tens of thousands.
        first_hours = func.extract("epoch", Ticket.first_response_at - Ticket.created_at) / 3600
        solved_hours = func.extract("epoch", Ticket.resolved_at - Ticket.created_at) / 3600
        has_first = Ticket.first_response_at.is_not(None) & Ticket.first_response_due.is_not(None)
        has_solved = Ticket.resolved_at.is_not(None) & Ticket.resolution_due.is_not(None)
        row = db.session.execute(
            select(
                func.percentile_cont(0.5).within_group(first_hours),
                func.percentile_cont(0.5).within_group(solved_hours),
                func.count().filter(
                    has_first & (Ticket.first_response_at <= Ticket.first_response_due)
                ),
                func.count().filter(has_first),
                func.count().filter(has_solved & (Ticket.resolved_at <= Ticket.resolution_due)),
                func.count().filter(has_solved),
            ).where(*window)
        ).one()
        report.ticket_first_response_hours = float(row[0]) if row[0] is not None else None
        report.ticket_resolution_hours = float(row[1]) if row[1] is not None else None
        report.ticket_first_response_met = (int(row[2]), int(row[3]))
        report.ticket_resolution_met = (int(row[4]), int(row[5]))
    else:
        rows = db.session.execute(
            select(
                Ticket.first_response_at,
                Ticket.first_response_due,
                Ticket.resolved_at,
                Ticket.resolution_due,
                Ticket.created_at,
            ).where(*window)
        ).all()
        firsts = [(r[0] - r[4]).total_seconds() / 3600 for r in rows if r[0] is not None]
        solved = [(r[2] - r[4]).total_seconds() / 3600 for r in rows if r[2] is not None]
        report.ticket_first_response_hours = statistics.median(firsts) if firsts else None
        report.ticket_resolution_hours = statistics.median(solved) if solved else None
        first = [(r[0], r[1]) for r in rows if r[0] is not None and r[1] is not None]
        resolved = [(r[2], r[3]) for r in rows if r[2] is not None and r[3] is not None]
        report.ticket_first_response_met = (sum(1 for a, d in first if a <= d), len(first))
        report.ticket_resolution_met = (sum(1 for a, d in resolved if a <= d), len(resolved))
    fault = Ticket.fields["fault_category"]["value"].as_string()
    grouped = db.session.execute(
        select(Ticket.model_code, fault, func.count())
        .where(Ticket.created_at >= report.since, Ticket.created_at < report.until)
        .group_by(Ticket.model_code, fault)
        .order_by(func.count().desc())
        .limit(30)
    ).all()
    report.tickets_by_model_fault = [(m or "-", f or "-", int(n)) for m, f, n in grouped]


def _csat(report: Report) -> None:
    rows = db.session.execute(
        select(CsatRating.score).where(
            CsatRating.asked_at >= report.since, CsatRating.asked_at < report.until
        )
    ).all()
    report.csat_asked = len(rows)
    report.csat_scores = Counter(int(s) for (s,) in rows if s is not None)


def csv_rows(report: Report) -> list[list[Any]]:
    """The report as CSV rows: section, key, value(s)."""
    out: list[list[Any]] = [["section", "key", "value", "extra"]]
    for day, inbound, outbound in report.messages_by_day:
        out.append(["messages", day, inbound, outbound])
    share = report.containment
    out.append(["containment", "sessions", report.sessions, ""])
    out.append(["containment", "contained", report.contained, f"{share:.3f}" if share else ""])
    for reason, n in report.handoffs_by_reason.most_common():
        out.append(["handoffs_by_reason", reason, n, ""])
    met, total = report.handoff_pickup_met
    out.append(["handoff_pickup", "within_target", met, total])
    if report.handoff_pickup_minutes is not None:
        out.append(["handoff_pickup", "median_minutes", f"{report.handoff_pickup_minutes:.1f}", ""])
    out.append(["ticket_first_response", "met", *report.ticket_first_response_met])
    out.append(["ticket_resolution", "met", *report.ticket_resolution_met])
    for key, hours in (
        ("ticket_first_response", report.ticket_first_response_hours),
        ("ticket_resolution", report.ticket_resolution_hours),
    ):
        if hours is not None:
            out.append([key, "median_hours", f"{hours:.1f}", ""])
    for model, fault, n in report.tickets_by_model_fault:
        out.append(["tickets_by_model_fault", model, fault, n])
    for score in range(1, 6):
        out.append(["csat", score, report.csat_scores.get(score, 0), ""])
    out.append(["csat", "asked", report.csat_asked, ""])
    for text, n in report.top_unanswered:
        out.append(["top_unanswered", text, n, ""])
    return out
