"""Tickets: the service requests the robot checked, for people to decide on.

``from kefu import tickets`` gives the model and the service functions every front door uses
(chat, web form, staff console, API): ``tickets.transition(ticket, to_state, actor, note)``,
``tickets.set_level``, ``tickets.set_priority``, ``tickets.by_number`` and the rest.
"""

from __future__ import annotations

from .models import (
    OPEN_STATES,
    Channel,
    DeviceReport,
    DeviceReportKind,
    Level,
    Priority,
    RequestForm,
    RequestType,
    Ticket,
    TicketState,
    ValidationRun,
)
from .service import (
    LEVEL_LABELS,
    PRIORITY_LABELS,
    STATE_LABELS,
    TRANSITIONS,
    TicketError,
    by_number,
    by_status_token,
    for_openid,
    notify_customer,
    open_for_serial,
    open_ticket,
    progress,
    set_level,
    set_priority,
    status_url,
    transition,
)

__all__ = [
    "LEVEL_LABELS",
    "OPEN_STATES",
    "PRIORITY_LABELS",
    "STATE_LABELS",
    "TRANSITIONS",
    "Channel",
    "DeviceReport",
    "DeviceReportKind",
    "Level",
    "Priority",
    "RequestForm",
    "RequestType",
    "Ticket",
    "TicketError",
    "TicketState",
    "ValidationRun",
    "by_number",
    "by_status_token",
    "for_openid",
    "notify_customer",
    "open_for_serial",
    "open_ticket",
    "progress",
    "set_level",
    "set_priority",
    "status_url",
    "transition",
]
