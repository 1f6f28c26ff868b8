"""Operators' commands: ``flask tickets list|show|sweep|device-report``, ``flask stats``,
``flask worker``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from .. import audit, jobs, timeutil
from ..catalog import devices as registry
from ..extensions import db
from ..models import ChatMessage, Handoff, UnansweredQuestion
from . import service
from .models import DeviceReport, DeviceReportKind, Ticket, TicketState

tickets_cli = AppGroup("tickets", help="Tickets: list, show, sweep, device reports.")


def _local(value: datetime | None) -> str:
    return f"{value.astimezone(timeutil.local_zone()):%Y-%m-%d %H:%M}" if value else "-"


@tickets_cli.command("list")
@click.option("--state", type=click.Choice([s.value for s in TicketState]), default=None)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def tickets_list(state: str | None, limit: int) -> None:
    """List tickets, newest first (optionally in one state)."""
    query = select(Ticket).order_by(Ticket.created_at.desc()).limit(limit)
    if state:
        query = query.where(Ticket.state == state)
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("没有工单 / no tickets.")
        return
    click.echo(
        f"{'number':<20} {'state':<17} {'lvl':<6} {'prio':<7} {'model':<9} "
        f"{'opened':<16} {'due':<16} flags"
    )
    for t in rows:
        click.echo(
            f"{t.number:<20} {t.state:<17} {t.level:<6} {t.priority:<7} "
            f"{(t.model_code or '-'):<9} {_local(t.created_at):<16} "
            f"{_local(t.resolution_due):<16} {','.join(t.flags or []) or '-'}"
        )


@tickets_cli.command("show")
@click.argument("number")
def tickets_show(number: str) -> None:
    """Show one ticket: fields and their sources, the validation run, flags and the audit log."""
    ticket = service.by_number(number)
    if ticket is None:
        raise click.ClickException(f"没有这个工单 / no such ticket: {number}")
    click.echo(f"{ticket.number}  {service.STATE_LABELS[ticket.state][0]} ({ticket.state})")
    click.echo(
        f"  type {ticket.request_type}, level {ticket.level}, priority {ticket.priority}, "
        f"channel {ticket.channel}"
    )
    click.echo(f"  device {ticket.serial} {ticket.model_code or ''}")
    click.echo(f"  contact {ticket.contact_name} {ticket.phone}  {ticket.address}")
    click.echo(f"  fault: {ticket.fault}")
    click.echo(
        f"  opened {_local(ticket.created_at)}, first response due "
        f"{_local(ticket.first_response_due)}, resolution due "
        f"{_local(ticket.resolution_due)}"
    )
    if ticket.unreachable_since:
        click.echo(
            f"  ! customer not reachable in WeChat since {_local(ticket.unreachable_since)}:"
            f" {ticket.unreachable_reason}"
        )
    click.echo(f"  flags: {', '.join(ticket.flags or []) or '-'}")
    click.echo(f"  status page: {service.status_url(ticket)}")
    click.echo("  fields:")
    for name, item in (ticket.fields or {}).items():
        click.echo(f"    {name:<16} {str(item.get('value')):<28} [{item.get('source')}]")
    for run in ticket.runs:
        click.echo(
            f"  validation run {_local(run.created_at)} ({run.channel}, "
            f"{'ok' if run.ok else 'errors'}), auto-filled: {', '.join(run.autofilled)}"
        )
        for result in run.results:
            click.echo(
                f"    {result['outcome']:<5} {result['severity']:<8} {result['code']:<26}"
                f" {json.dumps(result['seen'], ensure_ascii=False)}"
            )
    click.echo("  audit:")
    for entry in audit.history("ticket", ticket.number):
        change = ""
        if entry.before or entry.after:
            change = (
                f" {json.dumps(entry.before, ensure_ascii=False)} -> "
                f"{json.dumps(entry.after, ensure_ascii=False)}"
            )
        note = f" ({entry.note})" if entry.note else ""
        click.echo(f"    {_local(entry.at)} {entry.actor:<14} {entry.action}{change}{note}")


@tickets_cli.command("sweep")
@click.option("--queue", "queued", is_flag=True, help="Run it as a background job instead.")
def tickets_sweep(queued: bool) -> None:
    """Periodic work (cron, every 5 minutes): form reminders and expiry, SLA breaches, outbox."""
    from .. import requests

    if queued:
        jobs.enqueue(requests.sweep)
        click.echo("sweep queued")
        return
    done = requests.sweep()
    click.echo(", ".join(f"{key} {value}" for key, value in done.items()))


@tickets_cli.command("device-report")
@click.argument("serial")
@click.argument("kind", type=click.Choice([k.value for k in DeviceReportKind] + ["clear"]))
@click.option("--note", default="")
def device_report(serial: str, kind: str, note: str) -> None:
    """Mark a device stolen or revoked (requests for it are flagged), or clear the mark."""
    device = registry.by_serial(serial)
    if device is None:
        raise click.ClickException(f"没有这台设备 / no such device: {serial}")
    report = db.session.get(DeviceReport, device.id)
    before = {"kind": report.kind} if report else None
    if kind == "clear":
        if report is not None:
            db.session.delete(report)
    elif report is None:
        db.session.add(DeviceReport(device_id=device.id, kind=kind, note=note))
    else:
        report.kind, report.note = kind, note
    audit.record(
        "system",
        "device.report",
        "device",
        device.serial,
        before=before,
        after=None if kind == "clear" else {"kind": kind},
        note=note or None,
    )
    db.session.commit()
    click.echo(f"{device.serial}: {kind}")


def counters(days: int | None = None) -> dict[str, int]:
    """Operational counters (all time, or the last ``days`` days)."""
    since = datetime.now(UTC) - timedelta(days=days) if days else None

    def count(column, *where) -> int:  # type: ignore[no-untyped-def]
        query = select(func.count(column))
        for condition in where:
            query = query.where(condition)
        return int(db.session.scalar(query) or 0)

    def recent(column):  # type: ignore[no-untyped-def]
        return [column >= since] if since else []

    from ..outbox import OutboxMessage, OutboxStatus

    result = {
        "messages": count(
            ChatMessage.id, ChatMessage.direction == "in", *recent(ChatMessage.created_at)
        ),
        "handoffs": count(Handoff.id, *recent(Handoff.created_at)),
        "tickets": count(Ticket.id, *recent(Ticket.created_at)),
        "tickets_open": count(Ticket.id, Ticket.state.in_(service.OPEN_STATES)),
        "unanswered": count(UnansweredQuestion.id, *recent(UnansweredQuestion.created_at)),
        "jobs_failed": jobs.failed_count(current_app._get_current_object()),  # type: ignore[attr-defined]
        "outbox_pending": count(OutboxMessage.id, OutboxMessage.status == OutboxStatus.PENDING),
        "outbox_final": count(
            OutboxMessage.id,
            OutboxMessage.status == OutboxStatus.FINAL,
            *recent(OutboxMessage.created_at),
        ),
    }
    for state in TicketState:
        result[f"tickets_{state.value}"] = count(
            Ticket.id, Ticket.state == state, *recent(Ticket.created_at)
        )
    return result


@click.command("stats")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for monitoring.")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Only the last N days.")
def stats_command(as_json: bool, days: int | None) -> None:
    """Counters: messages, handoffs, tickets, unanswered questions, failed jobs, outbox."""
    values = counters(days)
    if as_json:
        click.echo(json.dumps(values, sort_keys=True))
        return
    for key, value in values.items():
        click.echo(f"{key:<26} {value}")


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(tickets_cli)
    app.cli.add_command(stats_command)
    jobs.init_app(app)
