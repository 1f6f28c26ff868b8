"""Tickets in the console: the filtered queue, the ticket page and its actions, new tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from werkzeug.wrappers import Response

from kefu import audit, csat, handoffs, outbox, staff, tickets
from kefu.extensions import db
from kefu.i18n import current_lang, localized
from kefu.models import ChatMessage, Handoff
from kefu.requests import photos, validation
from kefu.tickets import Level, Priority, Ticket, TicketError, TicketState

from . import present
from .blueprint import bp, current_staff, now, page_args, parse_int, record

PAGE_SIZE = 50


def label(pair: tuple[str, str] | None, fallback: str = "") -> str:
    """The Chinese or English half of a (zh, en) label."""
    return localized(pair[0], pair[1]) if pair else fallback


def ticket_error(exc: TicketError) -> str:
    """A refused ticket change in the page's language."""
    return localized(exc.zh, exc.en)


def overdue_clause(at: datetime) -> Any:
    """Open tickets past their first-response or resolution deadline."""
    return Ticket.state.in_([s.value for s in tickets.OPEN_STATES]) & or_(
        (Ticket.first_response_at.is_(None) & (Ticket.first_response_due < at)),
        Ticket.resolution_due < at,
    )


def ticket_query(args: dict[str, str], member_id: int, at: datetime) -> Any:
    """The ticket queue for the filters in ``args`` (state, level, priority, assignee, overdue)."""
    query = select(Ticket)
    state = args.get("state", "open")
    if state == "open":
        query = query.where(Ticket.state.in_([s.value for s in tickets.OPEN_STATES]))
    elif state in {s.value for s in TicketState}:
        query = query.where(Ticket.state == state)
    if args.get("level") in {lv.value for lv in Level}:
        query = query.where(Ticket.level == args["level"])
    if args.get("priority") in {p.value for p in Priority}:
        query = query.where(Ticket.priority == args["priority"])
    assignee = args.get("assignee", "")
    if assignee == "me":
        query = query.where(Ticket.assignee_id == member_id)
    elif assignee == "none":
        query = query.where(Ticket.assignee_id.is_(None))
    elif parse_int(assignee):
        query = query.where(Ticket.assignee_id == parse_int(assignee))
    if args.get("overdue") == "1":
        query = query.where(overdue_clause(at))
    return query.order_by(Ticket.resolution_due.asc().nulls_last(), Ticket.id)


def is_overdue(ticket: Ticket, at: datetime) -> bool:
    """Past a deadline while still open."""
    if not ticket.is_open:
        return False
    late_first = ticket.first_response_at is None and bool(
        ticket.first_response_due and ticket.first_response_due < at
    )
    return late_first or bool(ticket.resolution_due and ticket.resolution_due < at)


@bp.get("/tickets", endpoint="tickets")
def tickets_list() -> str:
    """The ticket queue with filters; most urgent deadline first."""
    member = current_staff()
    assert member is not None
    t = now()
    args = page_args()
    page = parse_int(args.get("page")) or 1
    rows = db.session.scalars(
        ticket_query(args, member.id, t).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    ).all()
    names = present.staff_names({r.assignee_id for r in rows if r.assignee_id})
    return render_template(
        "console/tickets.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        args=args,
        names=names,
        colleagues=staff.colleagues(),
        now=t,
    )


def _ticket(number: str) -> Ticket:
    ticket = tickets.by_number(number)
    if ticket is None:
        abort(404)
    return ticket


@bp.get("/t/<number>")
def ticket(number: str) -> str:
    """One ticket: fields (auto-filled marked), checks, flags, proof, transcript, audit."""
    tk = _ticket(number)
    t = now()
    run = tk.runs[-1] if tk.runs else None
    # Views are audited too, but the page lists changes only.
    history = [h for h in audit.history("ticket", tk.number) if not h.action.endswith("view")]
    messages = db.session.scalars(
        select(outbox.OutboxMessage)
        .where(outbox.OutboxMessage.ref == tk.number)
        .order_by(outbox.OutboxMessage.id)
    ).all()
    rating = db.session.scalar(select(csat.CsatRating).where(csat.CsatRating.ticket_id == tk.id))
    record("ticket.view", "ticket", tk.number)
    page = render_template(
        "console/ticket.html",
        ticket=tk,
        run=run,
        autofilled=set(run.autofilled) if run else set(),
        history=history,
        notes=[h for h in history if h.action == "ticket.note"],
        messages=messages,
        lines=present.line_dicts(present.transcript(tk.openid, limit=100)),
        owner=present.staff_names({tk.assignee_id}).get(tk.assignee_id or 0),
        colleagues=staff.colleagues(),
        overdue=is_overdue(tk, t),
        rating=rating,
        window=handoffs.window(tk.openid, t),
        reassign_minutes=int(current_app.config["TICKET_REASSIGN_MINUTES"]),
        flag_label=lambda f: label(validation.FLAG_LABELS.get(f), f),
        now=t,
    )
    # Committed after rendering: a commit expires every loaded row, and the page reads many.
    db.session.commit()
    return page


def route(ticket: Ticket, at: datetime) -> staff.Staff | None:
    """The on-duty agent whose turn it is in the ticket's skill group (by category and level)."""
    return handoffs.pick_agent(handoffs.ticket_group(ticket))


def assign_ticket(ticket: Ticket, member: staff.Staff, by: staff.Staff, at: datetime) -> None:
    """Give the ticket to ``member``: taken at once when it is ``by`` themself, else offered.

    An offered ticket waits for its agent to take it (接单) and moves on to the group's next
    on-duty agent after TICKET_REASSIGN_MINUTES.
    """
    if member.id == by.id:
        handoffs.take_ticket(ticket, by, at)
    else:
        handoffs.offer_ticket(ticket, member, f"staff:{by.username}", at)


def reply_to_customer(ticket: Ticket, text: str, who: str, member_id: int, at: datetime) -> bool:
    """Send the customer a message about the ticket; False when WeChat cannot reach them."""
    # The service formats its templates: braces typed by the agent must stay literal.
    sent = tickets.notify_customer(ticket, text.replace("{", "{{").replace("}", "}}"), now=at)
    if ticket.openid:
        db.session.add(
            ChatMessage(
                openid=ticket.openid, direction="out", text=text, created_at=at, staff_id=member_id
            )
        )
    ticket.first_response_at = ticket.first_response_at or at
    audit.record(who, "ticket.reply", "ticket", ticket.number, note=text[:500])
    return sent


def apply(
    ticket: Ticket, action: str, form: dict[str, str], member: staff.Staff, at: datetime
) -> str:
    """Do one ticket action from a form or the API; returns the message for the agent.

    Raises :class:`TicketError` (with both languages) when the change is refused.
    """
    who = f"staff:{member.username}"
    note = (form.get("note") or "").strip()
    if ticket.offered_at is not None and ticket.assignee_id == member.id and action != "assign":
        # Working an offered ticket takes it; a state change of its own tells the customer.
        handoffs.take_ticket(ticket, member, at, notify=action not in NOTIFYING)
    if action == "take":
        handoffs.take_ticket(ticket, member, at)
        return _("已接单")
    if action == "assign":
        target = form.get("staff_id", "")
        if target == "auto":
            chosen = route(ticket, at)
            if chosen is None:
                raise TicketError("这个技能组现在没有在岗的同事", "nobody of that group is on duty")
        else:
            chosen = member if target == "me" else staff.load(parse_int(target))
            if chosen is None:
                raise TicketError("请选择负责人", "choose an assignee")
        assign_ticket(ticket, chosen, member, at)
        return _("已分配给 %(name)s", name=chosen.display_name)
    if action == "level":
        level = form.get("level", "")
        if level not in {lv.value for lv in Level}:
            raise TicketError("请选择级别", "choose a level")
        if not note:
            raise TicketError("升级或改级别必须写明原因", "a level change needs a note")
        tickets.set_level(ticket, level, who, note)
        if ticket.assignee_id is not None:
            current = staff.load(ticket.assignee_id)
            category = ticket.device.model.series.category if ticket.device else None
            group = handoffs.group_for(category, level, handoffs.role_of(ticket.openid))
            if current is None or group not in (current.groups or []):
                chosen = handoffs.pick_agent(group)
                if chosen is not None:
                    assign_ticket(ticket, chosen, member, at)
        return _("级别已改为 %(level)s", level=label(tickets.LEVEL_LABELS.get(level), level))
    if action == "priority":
        priority = form.get("priority", "")
        if priority not in {p.value for p in Priority}:
            raise TicketError("请选择优先级", "choose a priority")
        tickets.set_priority(ticket, priority, who, note or None)
        return _("优先级已更新")
    if action == "reply":
        text = (form.get("text") or "").strip()
        if not text or len(text) > 1500:
            raise TicketError(
                "请填写回复（1500 字以内）", "write a reply (at most 1500 characters)"
            )
        if reply_to_customer(ticket, text, who, member.id, at):
            return _("已发送给客户")
        return _("微信无法联系到客户（48小时窗口已关闭或无微信），已记录，请电话联系")
    if action == "note":
        if not note:
            raise TicketError("请填写备注", "write the note")
        audit.record(who, "ticket.note", "ticket", ticket.number, note=note[:2000])
        return _("内部备注已保存")
    if action == "ask":
        if not note:
            raise TicketError("请写明需要客户补充什么", "say what the customer should provide")
        tickets.transition(ticket, TicketState.WAITING_CUSTOMER, who, note, now=at)
        return _("已请客户补充，计时暂停")
    if action == "resolve":
        tickets.transition(ticket, TicketState.RESOLVED, who, note or None, now=at)
        csat.ask(ticket.id, ticket.number, ticket.openid, at)
        return _("已解决，已请客户评价")
    if action == "close":
        tickets.transition(ticket, TicketState.CLOSED, who, note or None, now=at)
        return _("已关闭")
    if action == "reopen":
        target = TicketState.ASSIGNED if ticket.assignee_id else TicketState.VALIDATED
        tickets.transition(ticket, target, who, note or None, now=at)
        return _("已重新打开")
    raise TicketError("未知操作", "unknown action")


ACTIONS = (
    "take",
    "assign",
    "level",
    "priority",
    "reply",
    "note",
    "ask",
    "resolve",
    "close",
    "reopen",
)
# Actions whose own state change tells the customer (so taking the ticket first stays silent).
NOTIFYING = frozenset({"ask", "resolve", "close", "reopen"})


@bp.post("/t/<number>/<action>")
def ticket_action(number: str, action: str) -> Response:
    """A ticket action: take, assign, level, priority, reply, note, ask, resolve, close, reopen."""
    if action not in ACTIONS:
        abort(404)
    tk = _ticket(number)
    member = current_staff()
    assert member is not None
    try:
        message = apply(tk, action, request.form.to_dict(), member, now())
    except TicketError as exc:
        db.session.rollback()
        flash(ticket_error(exc), "error")
        return redirect(url_for(".ticket", number=number))
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for(".ticket", number=tk.number))


def _prefill(handoff: Handoff | None) -> dict[str, str]:
    if handoff is None:
        return {}
    devices = handoffs.devices_for(handoff.openid)
    said = [m for m in present.transcript(handoff.openid, limit=30) if m.direction == "in"]
    return {
        "serial": devices[0].serial if devices else "",
        "fault": "\n".join(m.text for m in said[-5:])[:1000],
    }


@bp.get("/tickets/new")
def ticket_new() -> str:
    """A new ticket, prefilled from a conversation (its device and what the user said)."""
    handoff = db.session.get(Handoff, parse_int(request.args.get("handoff")) or 0)
    return render_template(
        "console/ticket_new.html", form=_prefill(handoff), handoff=handoff, errors=[]
    )


@bp.post("/tickets/new")
def ticket_create() -> Response | tuple[str, int]:
    """Open a ticket: the robot's checks run first, as for a request made in chat."""
    member = current_staff()
    assert member is not None
    handoff = db.session.get(Handoff, parse_int(request.form.get("handoff")) or 0)
    form = {
        k: (request.form.get(k) or "").strip()
        for k in (
            "serial",
            "fault",
            "contact_name",
            "phone",
            "address",
            "purchase_date",
            "request_type",
        )
    }
    t = now()
    values: dict[str, Any] = {"request_type": form["request_type"] or "repair"}
    errors: list[str] = []
    for name in ("serial", "fault", "contact_name", "phone", "address", "purchase_date"):
        if not form[name]:
            continue
        check = validation.check_field(name, form[name], t.date())
        if check.error is not None:
            errors.append(check.error.message(current_lang_code()))
        else:
            values[name] = check.value
            values.update(check.fills)
    openid = handoff.openid if handoff else None
    if not errors:
        report = validation.run(
            values, {k: "staff" for k in values}, openid=openid, today=t.date(), now=t
        )
        errors = [r.message(current_lang_code()) for r in report.errors]
    if errors:
        db.session.rollback()
        return render_template(
            "console/ticket_new.html", form=form, handoff=handoff, errors=errors
        ), 400
    priority, level = validation.triage(report.values)
    device = report.device
    tk = tickets.open_ticket(
        actor=f"staff:{member.username}",
        values=validation.ticket_fields(report),
        now=t,
        priority=priority,
        level=level,
        request_type=values["request_type"],
        channel="staff",
        openid=openid,
        device_id=device.id if device else None,
        serial=report.values.get("serial", ""),
        model_code=device.model.code if device else report.values.get("model"),
        fault=report.values.get("fault", ""),
        contact_name=report.values.get("contact_name", ""),
        phone=report.values.get("phone", ""),
        address=report.values.get("address", ""),
        purchase_date=validation.purchase_date(report),
    )
    tk.flags = report.flags
    validation.store(tk, report, "staff", actor=f"staff:{member.username}")
    if handoff is not None:
        record("handoff.ticket", "handoff", handoff.id, after={"ticket": tk.number})
    db.session.commit()
    flash(_("已建工单 %(number)s", number=tk.number), "ok")
    return redirect(url_for(".ticket", number=tk.number))


def current_lang_code() -> str:
    """ "zh" or "en" for messages the core writes in both."""
    return current_lang()


@bp.get("/t/<number>/proof")
def ticket_proof(number: str) -> Response:
    """The ticket's proof-of-purchase photo (staff only; never served to the public)."""
    tk = _ticket(number)
    if not tk.proof_sha256:
        abort(404)
    path = photos.path_for(tk.proof_sha256)
    if not path.is_file():
        abort(404)
    record("ticket.proof_view", "ticket", tk.number)
    db.session.commit()
    # Read whole (a cleaned photo is a few hundred KB), so no file handle outlives the request.
    return Response(path.read_bytes(), mimetype="image/jpeg")
