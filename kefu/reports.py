"""Figures for the console's reports page and its CSV: what the bot and the people achieved.

Containment is the share of the bot's conversations (a user's messages on one day) that ended
without a person and without the user coming back within 24 hours about the same thing.
Nothing here writes.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from . import unanswered
from .csat import CsatRating
from .extensions import db
from .models import ChatMessage, Handoff
from .timeutil import local_zone

RETURN_WINDOW = timedelta(hours=24)


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


def build(now: datetime, days: int = 14) -> Report:
    """The report for the last ``days`` days up to ``now``."""
    since = now - timedelta(days=days)
    report = Report(since=since, until=now)
    _messages(report)
    _containment(report)
    _handoffs(report)
    _tickets(report)
    _csat(report)
    report.top_unanswered = [(g.text, g.count) for g in unanswered.groups(now, days=days, limit=10)]
    return report


def _messages(report: Report) -> None:
    zone = local_zone()
    window = (ChatMessage.created_at >= report.since, ChatMessage.created_at < report.until)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if db.session.get_bind().dialect.name == "postgresql":
        # Counted by the database: a month of a busy account is millions of rows.
        day = func.date_trunc("day", func.timezone(zone.key, ChatMessage.created_at))
        rows = db.session.execute(
            select(day, ChatMessage.direction, func.count())
            .where(*window)
            .group_by(day, ChatMessage.direction)
        )
        for at, direction, n in rows:
            counts[at.strftime("%m-%d")][0 if direction == "in" else 1] += int(n)
    else:
        for at, direction in db.session.execute(
            select(ChatMessage.created_at, ChatMessage.direction).where(*window)
        ):
            counts[at.astimezone(zone).strftime("%m-%d")][0 if direction == "in" else 1] += 1
    report.messages_by_day = [(d, c[0], c[1]) for d, c in sorted(counts.items())]


def _sessions(report: Report) -> Iterator[tuple[str, list[tuple[datetime, str]]]]:
    """Each user's messages grouped by local day, in time order (rows arrive sorted)."""
    zone = local_zone()
    rows = db.session.execute(
        select(ChatMessage.openid, ChatMessage.created_at, func.substr(ChatMessage.text, 1, 80))
        .where(
            ChatMessage.direction == "in",
            ChatMessage.created_at >= report.since,
            ChatMessage.created_at < report.until + RETURN_WINDOW,
        )
        .order_by(ChatMessage.openid, ChatMessage.created_at)
    )
    key: tuple[str, object] | None = None
    said: list[tuple[datetime, str]] = []
    for openid, at, text in rows:
        this = (openid, at.astimezone(zone).date())
        if this != key and said:
            yield key[0], said  # type: ignore[index]
            said = []
        key = this
        said.append((at, text or ""))
    if said and key is not None:
        yield key[0], said


def _grams(
    cache: dict[int, set[str]], sessions: list[list[tuple[datetime, str]]], i: int
) -> set[str]:
    """The bigrams of session ``i``, computed once."""
    if i not in cache:
        cache[i] = set().union(*(unanswered.bigrams(t) for _, t in sessions[i]))
    return cache[i]


def _containment(report: Report) -> None:
    handed: dict[str, list[datetime]] = defaultdict(list)
    for openid, at in db.session.execute(
        select(Handoff.openid, Handoff.created_at).where(
            Handoff.created_at >= report.since, Handoff.openid.is_not(None)
        )
    ):
        handed[openid].append(at)
    by_user: dict[str, list[list[tuple[datetime, str]]]] = defaultdict(list)
    for openid, said in _sessions(report):
        by_user[openid].append(said)
    for openid, user_sessions in by_user.items():
        grams: dict[int, set[str]] = {}
        times = handed.get(openid, [])
        for i, said in enumerate(user_sessions):
            start, end = said[0][0], said[-1][0]
            if start >= report.until:
                continue
            report.sessions += 1
            if any(start <= h <= end + timedelta(minutes=1) for h in times):
                continue
            returned = False
            for j in range(i + 1, len(user_sessions)):
                if user_sessions[j][0][0] - end > RETURN_WINDOW:
                    break
                if unanswered.similar(
                    _grams(grams, user_sessions, i), _grams(grams, user_sessions, j)
                ):
                    returned = True
                    break
            if not returned:
                report.contained += 1


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

    rows = db.session.execute(
        select(
            Ticket.first_response_at,
            Ticket.first_response_due,
            Ticket.resolved_at,
            Ticket.resolution_due,
            Ticket.created_at,
        ).where(Ticket.created_at >= report.since, Ticket.created_at < report.until)
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
