"""What can happen to a ticket: opened, moved between states, escalated, reprioritised, reopened.

Every change goes through here so that it is written to the audit log and, when the customer
should know, told to them in WeChat (inside the 48-hour window) or recorded as needing another
way to reach them. Nothing here commits; callers own the transaction.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from .. import audit, outbox, timeutil
from ..errors import BilingualError
from ..extensions import db
from . import numbers, sla
from .models import (
    OPEN_STATES,
    Level,
    Priority,
    Ticket,
    TicketState,
)


class TicketError(BilingualError):
    """A refused change, with its reason in Chinese and English."""


# Which states a ticket may move to from each state (reopening is resolved/closed -> assigned
# or validated, allowed within TICKET_REOPEN_DAYS).
TRANSITIONS: dict[str, frozenset[str]] = {
    TicketState.NEW: frozenset(
        {
            TicketState.VALIDATED,
            TicketState.ASSIGNED,
            TicketState.WAITING_CUSTOMER,
            TicketState.RESOLVED,
            TicketState.CLOSED,
        }
    ),
    TicketState.VALIDATED: frozenset(
        {
            TicketState.ASSIGNED,
            TicketState.WAITING_CUSTOMER,
            TicketState.RESOLVED,
            TicketState.CLOSED,
        }
    ),
    TicketState.ASSIGNED: frozenset(
        {
            TicketState.VALIDATED,
            TicketState.WAITING_CUSTOMER,
            TicketState.RESOLVED,
            TicketState.CLOSED,
        }
    ),
    TicketState.WAITING_CUSTOMER: frozenset(
        {TicketState.VALIDATED, TicketState.ASSIGNED, TicketState.RESOLVED, TicketState.CLOSED}
    ),
    TicketState.RESOLVED: frozenset(
        {TicketState.CLOSED, TicketState.ASSIGNED, TicketState.VALIDATED}
    ),
    TicketState.CLOSED: frozenset({TicketState.ASSIGNED, TicketState.VALIDATED}),
}

STATE_LABELS: dict[str, tuple[str, str]] = {
    TicketState.NEW: ("已提交", "Submitted"),
    TicketState.VALIDATED: ("已审核", "Checked"),
    TicketState.ASSIGNED: ("处理中", "In progress"),
    TicketState.WAITING_CUSTOMER: ("待您补充", "Waiting for you"),
    TicketState.RESOLVED: ("已解决", "Resolved"),
    TicketState.CLOSED: ("已关闭", "Closed"),
}
LEVEL_LABELS: dict[str, tuple[str, str]] = {
    Level.L1: ("一线（自助/机器人）", "L1 self-service"),
    Level.L2: ("二线专员", "L2 specialist"),
    Level.L3: ("专家组", "L3 expert team"),
    Level.ONSITE: ("上门服务", "On-site service"),
}
PRIORITY_LABELS: dict[str, tuple[str, str]] = {
    Priority.LOW: ("低", "low"),
    Priority.NORMAL: ("普通", "normal"),
    Priority.HIGH: ("高", "high"),
    Priority.URGENT: ("紧急", "urgent"),
}
# What the customer is told in WeChat when their ticket reaches a state.
NOTICES: dict[str, str] = {
    TicketState.VALIDATED: "您的工单 {number} 已通过审核，正在为您安排专员处理。",
    TicketState.ASSIGNED: "您的工单 {number} 已由专员受理，预计 {due} 前给您答复。",
    TicketState.WAITING_CUSTOMER: "您的工单 {number} 需要您补充信息：{note}\n请直接在公众号回复。",
    TicketState.RESOLVED: (
        "您的工单 {number} 已处理完毕。{note}\n如问题仍在，{days} 天内再次报修同一设备，"
        "将直接重新打开本工单。"
    ),
    TicketState.CLOSED: "您的工单 {number} 已关闭，感谢您的耐心。",
}
REOPENED_NOTICE = "您的工单 {number} 已重新打开，专员会继续为您处理。"


def reopen_days() -> int:
    """Days after resolution within which a ticket is reopened instead of a new one opened."""
    return int(current_app.config.get("TICKET_REOPEN_DAYS", 14))


def status_url(ticket: Ticket) -> str:
    """The customer's status page: an unguessable link, not the ticket number."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/t/{ticket.status_token}"


def by_number(number: str) -> Ticket | None:
    """The ticket with this number (check character verified), or None."""
    canonical = numbers.normalise(number)
    if canonical is None:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.number == canonical))


def by_status_token(token: str) -> Ticket | None:
    """The ticket behind a status-page link, or None."""
    if not token or len(token) > 43:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.status_token == token))


def for_openid(openid: str, limit: int = 5) -> list[Ticket]:
    """The user's own tickets, open ones first, newest first."""
    if not openid:
        return []
    rows = db.session.scalars(
        select(Ticket).where(Ticket.openid == openid).order_by(Ticket.created_at.desc())
    ).all()
    ordered = sorted(rows, key=lambda t: (not t.is_open, -t.created_at.timestamp()))
    return ordered[:limit]


def open_for_serial(serial: str) -> list[Ticket]:
    """Open tickets for this device serial."""
    return list(
        db.session.scalars(
            select(Ticket).where(Ticket.serial == serial, Ticket.state.in_(OPEN_STATES))
        )
    )


def reopenable_for(serial: str, openid: str | None, now: datetime) -> Ticket | None:
    """The same customer's recently resolved or closed ticket for this device, if any.

    Only the chat that filed it (its openid) reopens it: a serial and a phone number are
    printed on labels and delivery slips, so someone who knows both is not shown the owner's
    ticket, nor allowed to change it; they get a ticket of their own.
    """
    if not openid:
        return None
    since = now - timedelta(days=reopen_days())
    return db.session.scalars(
        select(Ticket)
        .where(
            Ticket.serial == serial,
            Ticket.openid == openid,
            Ticket.state.in_([TicketState.RESOLVED, TicketState.CLOSED]),
            Ticket.resolved_at.is_not(None),
            Ticket.resolved_at >= since,
        )
        .order_by(Ticket.resolved_at.desc())
        .limit(1)
    ).first()


def new_number(now: datetime) -> str:
    """A ticket number not yet used (20 random bits a day: collisions are rare, not impossible)."""
    for _ in range(20):
        number = numbers.generate(timeutil.today(now))
        if db.session.scalar(select(Ticket.id).where(Ticket.number == number)) is None:
            return number
    raise RuntimeError("no free ticket number")


def open_ticket(
    *,
    actor: str,
    values: dict[str, Any],
    now: datetime | None = None,
    state: str = TicketState.NEW,
    **columns: Any,
) -> Ticket:
    """Create a ticket from checked values, with its deadlines, and audit it."""
    now = now or datetime.now(UTC)
    priority = columns.pop("priority", Priority.NORMAL)
    level = columns.pop("level", Level.L2)
    first_due, resolution_due = sla.deadlines(now, priority, level)
    ticket = Ticket(
        number=new_number(now),
        status_token=secrets.token_urlsafe(32),
        state=state,
        priority=priority,
        level=level,
        created_at=now,
        updated_at=now,
        first_response_due=first_due,
        resolution_due=resolution_due,
        fields=values,
        flags=[],
        reopened=0,
        **columns,
    )
    db.session.add(ticket)
    db.session.flush()
    audit.record(
        actor,
        "ticket.open",
        "ticket",
        ticket.number,
        after={"state": state, "level": level, "priority": priority, "channel": ticket.channel},
    )
    return ticket


def transition(
    ticket: Ticket,
    to_state: str,
    actor: str,
    note: str | None = None,
    *,
    now: datetime | None = None,
    notify: bool = True,
) -> None:
    """Move ``ticket`` to ``to_state``: checked, audited, the SLA clock kept, the customer told."""
    now = now or datetime.now(UTC)
    to_state = TicketState(to_state)
    before = ticket.state
    if to_state == before:
        return
    if to_state not in TRANSITIONS[before]:
        raise TicketError(
            f"工单不能从“{STATE_LABELS[before][0]}”改为“{STATE_LABELS[to_state][0]}”",
            f"a ticket cannot go from {before} to {to_state}",
        )
    reopening = before in (TicketState.RESOLVED, TicketState.CLOSED)
    if reopening:
        resolved = ticket.resolved_at or ticket.closed_at or now
        if now - resolved > timedelta(days=reopen_days()):
            raise TicketError(
                f"工单已解决超过 {reopen_days()} 天，不能重新打开，请新建工单",
                f"resolved more than {reopen_days()} days ago; open a new ticket",
            )
        ticket.reopened = (ticket.reopened or 0) + 1
        ticket.resolved_at = None
        ticket.closed_at = None
        # A reopened ticket gets a fresh resolution deadline from now.
        _, ticket.resolution_due = sla.deadlines(now, ticket.priority, ticket.level)
    if before == TicketState.WAITING_CUSTOMER and ticket.waiting_since is not None:
        _resume_clock(ticket, now)
    if to_state == TicketState.WAITING_CUSTOMER:
        ticket.waiting_since = now
    if to_state == TicketState.ASSIGNED and ticket.first_response_at is None:
        ticket.first_response_at = now
    if to_state == TicketState.RESOLVED:
        ticket.resolved_at = now
    if to_state == TicketState.CLOSED:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    ticket.state = to_state
    ticket.updated_at = now
    audit.record(
        actor,
        "ticket.reopen" if reopening else "ticket.state",
        "ticket",
        ticket.number,
        before={"state": before},
        after={"state": to_state},
        note=note,
    )
    if notify:
        template = REOPENED_NOTICE if reopening else NOTICES.get(to_state)
        if template:
            notify_customer(ticket, template, note=note, now=now)


def _resume_clock(ticket: Ticket, now: datetime) -> None:
    # Waiting for the customer does not count against the deadlines: push them by the
    # business hours spent waiting.
    assert ticket.waiting_since is not None
    paused = sla.business_hours_between(ticket.waiting_since, now)
    if ticket.resolution_due is not None and paused > 0:
        ticket.resolution_due = sla.add_business_hours(ticket.resolution_due, paused)
    if ticket.first_response_at is None and ticket.first_response_due is not None and paused:
        ticket.first_response_due = sla.add_business_hours(ticket.first_response_due, paused)
    ticket.waiting_since = None


def set_level(ticket: Ticket, level: str, actor: str, note: str | None = None) -> None:
    """Change the support level (escalation), re-deriving the resolution deadline; audited."""
    level = Level(level)
    before = ticket.level
    if level == before:
        return
    ticket.level = level
    _, ticket.resolution_due = sla.deadlines(ticket.created_at, ticket.priority, level)
    audit.record(
        actor,
        "ticket.level",
        "ticket",
        ticket.number,
        before={"level": before},
        after={"level": level},
        note=note,
    )


def set_priority(ticket: Ticket, priority: str, actor: str, note: str | None = None) -> None:
    """Change the priority and the deadlines that follow from it; audited."""
    priority = Priority(priority)
    before = ticket.priority
    if priority == before:
        return
    ticket.priority = priority
    first_due, resolution_due = sla.deadlines(ticket.created_at, priority, ticket.level)
    if ticket.first_response_at is None:
        ticket.first_response_due = first_due
    ticket.resolution_due = resolution_due
    audit.record(
        actor,
        "ticket.priority",
        "ticket",
        ticket.number,
        before={"priority": before},
        after={"priority": priority},
        note=note,
    )


def notify_customer(
    ticket: Ticket, template: str, *, note: str | None = None, now: datetime | None = None
) -> bool:
    """Tell the customer in WeChat, inside the 48-hour window; else record they must be called."""
    now = now or datetime.now(UTC)
    if not ticket.openid:
        _unreachable(ticket, "无微信联系方式", now)
        return False
    if not outbox.window_open(ticket.openid, now):
        _unreachable(ticket, "超过48小时未互动，微信无法通知", now)
        return False
    due = ticket.resolution_due.astimezone(timeutil.local_zone()) if ticket.resolution_due else None
    text = template.format(
        number=ticket.number,
        note=(note or "").strip(),
        days=reopen_days(),
        due=f"{due:%m月%d日 %H:%M}" if due else "尽快",
    )
    text += f"\n查看进度：{status_url(ticket)}"
    outbox.enqueue_text(ticket.openid, text, purpose="ticket_state", ref=ticket.number)
    return True


def _unreachable(ticket: Ticket, reason: str, now: datetime) -> None:
    if ticket.unreachable_since is not None and ticket.unreachable_reason == reason:
        return  # already recorded; the agent sees it on the ticket
    ticket.unreachable_since = ticket.unreachable_since or now
    ticket.unreachable_reason = reason
    audit.record(
        "system",
        "ticket.customer_unreachable",
        "ticket",
        ticket.number,
        note=f"{reason}，请通过电话等其他方式联系客户",
    )


def customer_unreachable(number: str, code: int | None, reason: str | None) -> None:
    """WeChat refused a notification for good: the customer must be reached another way."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is not None:
        _unreachable(ticket, f"{reason or '微信通知失败'}（{code}）", datetime.now(UTC))


def progress(ticket: Ticket) -> tuple[int, list[tuple[str, bool, bool]]]:
    """The status page's bar: (percent, [(state, reached, current)]) through the main path."""
    path = [
        TicketState.NEW,
        TicketState.VALIDATED,
        TicketState.ASSIGNED,
        TicketState.RESOLVED,
        TicketState.CLOSED,
    ]
    current = ticket.state
    position = (
        path.index(TicketState.ASSIGNED)
        if current == TicketState.WAITING_CUSTOMER
        else path.index(TicketState(current))
    )
    steps = [(s.value, i <= position, i == position) for i, s in enumerate(path)]
    return round(100 * position / (len(path) - 1)), steps


def forget(openid: str) -> None:
    """The user unfollowed: tickets lose the openid; closed ones also their contact details.

    Open tickets keep name, phone and address: the repaired device still has to be returned
    and the customer called. Closed ones keep what compliance needs (device, fault, states,
    audit) without the person.
    """
    for ticket in db.session.scalars(select(Ticket).where(Ticket.openid == openid)):
        ticket.openid = None
        if not ticket.is_open:
            ticket.contact_name = ""
            ticket.phone = ""
            ticket.address = ""
            fields = dict(ticket.fields or {})
            for name in ("contact_name", "phone", "address"):
                fields.pop(name, None)
            ticket.fields = fields
            for run in ticket.runs:
                run.values = {
                    k: v
                    for k, v in (run.values or {}).items()
                    if k not in ("contact_name", "phone", "address")
                }
                run.results = [
                    {**r, "seen": {}}
                    if r.get("field") in ("contact_name", "phone", "address")
                    else r
                    for r in (run.results or [])
                ]


def sla_sweep(now: datetime | None = None) -> int:
    """Record, once per ticket and deadline, that an open ticket missed it; returns how many."""
    from ..audit import AuditEntry

    now = now or datetime.now(UTC)
    breaches = 0
    rows = db.session.scalars(
        select(Ticket).where(
            Ticket.state.in_(OPEN_STATES),
            Ticket.state != TicketState.WAITING_CUSTOMER,  # the clock is paused
        )
    ).all()
    for ticket in rows:
        missed = []
        if ticket.first_response_at is None and ticket.first_response_due is not None:
            if ticket.first_response_due < now:
                missed.append("first_response")
        if ticket.resolution_due is not None and ticket.resolution_due < now:
            missed.append("resolution")
        if not missed:
            continue
        recorded = set(
            db.session.scalars(
                select(AuditEntry.note).where(
                    AuditEntry.target_type == "ticket",
                    AuditEntry.target_id == ticket.number,
                    AuditEntry.action == "ticket.sla_breached",
                )
            )
        )
        for deadline in missed:
            if deadline not in recorded:
                audit.record(
                    "system", "ticket.sla_breached", "ticket", ticket.number, note=deadline
                )
                breaches += 1
    return breaches
