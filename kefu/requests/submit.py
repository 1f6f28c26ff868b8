"""Turning a checked request into a ticket: a new one, a reopened one, or none (a duplicate)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from .. import timeutil
from ..tickets import service
from ..tickets.models import Ticket, TicketState
from . import validation

Outcome = Literal["created", "reopened", "duplicate"]
CREATED_NOTICE = "您在网页提交的工单 {number} 已受理，我们会尽快联系您。"


def submit(
    report: validation.Report,
    *,
    channel: str,
    openid: str | None,
    now: datetime,
    actor: str = "customer",
) -> tuple[Ticket, Outcome]:
    """File the request; the caller has checked ``report.ok`` and commits."""
    if report.duplicate is not None:
        return report.duplicate, "duplicate"
    values = report.values
    if report.reopen is not None:
        ticket = report.reopen
        validation.store(ticket, report, channel)
        day = timeutil.today(now)
        ticket.fault = f"{ticket.fault}\n[{day:%Y-%m-%d}] {values.get('fault', '')}".strip()
        # The customer confirmed these in the summary just now: a move since the last repair
        # must not send the device back to the old address.
        for name in ("contact_name", "phone", "address"):
            if values.get(name):
                setattr(ticket, name, values[name])
        ticket.flags = sorted(set(ticket.flags or []) | set(report.flags))
        service.transition(ticket, TicketState.VALIDATED, "bot", "客户再次报修同一设备", now=now)
        return ticket, "reopened"
    ticket = service.open_ticket(
        actor=actor,
        values=validation.ticket_fields(report),
        now=now,
        channel=channel,
        openid=openid,
        request_type=values.get("request_type"),
        device_id=report.device.id if report.device is not None else None,
        serial=values.get("serial") or "",
        model_code=values.get("model") or values.get("model_said"),
        fault=values.get("fault") or "",
        contact_name=values.get("contact_name") or "",
        phone=values.get("phone") or "",
        address=values.get("address") or "",
        purchase_date=validation.purchase_date(report),
        proof_sha256=values.get("proof_sha256"),
        priority=values.get("priority"),
        level=values.get("level"),
    )
    ticket.flags = report.flags
    validation.store(ticket, report, channel)
    service.transition(
        ticket, TicketState.VALIDATED, "bot", "机器人校验通过", now=now, notify=False
    )
    if channel != "chat" and openid:
        service.notify_customer(ticket, CREATED_NOTICE, now=now)
    return ticket, "created"
