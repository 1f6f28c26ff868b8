"""``/api/v1``: JSON for integrations and for the console's own pages.

Authenticated by ``Authorization: Bearer TOKEN`` (``flask --app wsgi staff token USERNAME``) or
by a console session; a session's writes also need the CSRF token in ``X-CSRFToken``, as a
browser page would send it. Anything else gets 401.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from kefu import audit, csat, handoffs, staff, tickets
from kefu.extensions import db
from kefu.handoffs import HandoffError
from kefu.models import Handoff
from kefu.tickets import Ticket, TicketError, TicketState

from . import present
from .blueprint import current_staff, now
from .tickets import apply, is_overdue, reply_to_customer, ticket_query

bp = Blueprint("api", __name__, url_prefix="/api/v1")
LIST_LIMIT = 100


def _error(status: int, code: str, message: str = "") -> Response:
    response = jsonify({"error": code, "message": message or code})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kefu"'
    return response


@bp.before_request
def _authenticate() -> Response | None:
    # A bearer token, else the console session (with CSRF on writes); nothing else.
    header = request.headers.get("Authorization", "")
    if request.endpoint == "api.openapi":
        return None
    if header.lower().startswith("bearer "):
        member = staff.by_token(header[7:].strip())
        if member is None:
            return _error(401, "invalid_token", "token unknown, revoked, or account disabled")
        g.api_staff = member
        return None
    member = current_staff()
    if member is None:
        return _error(401, "unauthenticated", "send Authorization: Bearer TOKEN")
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except (CSRFError, Exception):  # flask-wtf raises ValidationError
            return _error(400, "csrf", "a console session needs X-CSRFToken on writes")
    g.api_staff = member
    return None


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    """Errors as JSON, never an HTML page."""
    return _error(
        exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or ""
    )


def _me() -> staff.Staff:
    return g.api_staff  # type: ignore[no-any-return]


def _actor() -> str:
    return f"staff:{_me().username}"


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _handoff(handoff_id: int) -> Handoff | None:
    return db.session.get(Handoff, handoff_id)


def _handoff_error(exc: HandoffError) -> Response:
    status = 409 if exc.code in {"closed", "gone"} else 400
    return _error(status, exc.code)


# --- conversations ----------------------------------------------------------------------------


@bp.get("/conversations")
def conversations() -> Response:
    """Conversations by status: waiting (unclaimed), open (an agent owns it) or closed."""
    status = request.args.get("status", "waiting")
    if status == "waiting":
        query = handoffs.waiting_query()
    elif status == "open":
        query = (
            select(Handoff)
            .where(Handoff.status == "open", Handoff.claimed_at.is_not(None))
            .order_by(Handoff.created_at, Handoff.id)
        )
    elif status == "closed":
        query = select(Handoff).where(Handoff.status == "closed").order_by(Handoff.id.desc())
    else:
        return _error(400, "bad_status", "status must be waiting, open or closed")
    rows = db.session.scalars(query.limit(LIST_LIMIT)).all()
    items = present.handoff_rows(list(rows), now(), with_viewers=False)
    for item in items:
        item.pop("url", None)
        item.pop("viewers", None)
    return jsonify({"conversations": items})


@bp.get("/conversations/<int:handoff_id>")
def conversation(handoff_id: int) -> Response:
    """One conversation with its messages (from user, bot or agent)."""
    handoff = _handoff(handoff_id)
    if handoff is None:
        return _error(404, "not_found")
    row = present.handoff_rows([handoff], now(), with_viewers=False)[0]
    row.pop("url", None)
    row.pop("viewers", None)
    row["messages"] = present.line_dicts(present.transcript(handoff.openid, limit=500))
    return jsonify(row)


@bp.post("/conversations/<int:handoff_id>/messages")
def conversation_message(handoff_id: int) -> Response | tuple[Response, int]:
    """An agent reply, sent to the user through WeChat's customer-service API (the outbox)."""
    handoff = _handoff(handoff_id)
    if handoff is None:
        return _error(404, "not_found")
    text = _body().get("text")
    if not isinstance(text, str):
        return _error(400, "text_required", 'send {"text": "..."}')
    t = now()
    try:
        line = handoffs.reply(handoff, _me(), text, t)
    except HandoffError as exc:
        db.session.rollback()
        return _handoff_error(exc)
    window = handoffs.window(handoff.openid, t)
    db.session.commit()
    [out] = present.line_dicts([line])
    out["window_open"] = window.open
    return jsonify(out), 201


@bp.post("/conversations/<int:handoff_id>/close")
def conversation_close(handoff_id: int) -> Response:
    """Hand the conversation back to the bot (the user is told)."""
    handoff = _handoff(handoff_id)
    if handoff is None:
        return _error(404, "not_found")
    try:
        handoffs.hand_back(handoff, _me(), now())
    except HandoffError as exc:
        db.session.rollback()
        return _handoff_error(exc)
    db.session.commit()
    return jsonify({"id": handoff.id, "status": "closed"})


# --- tickets ----------------------------------------------------------------------------------


def ticket_json(ticket: Ticket, full: bool = False) -> dict[str, Any]:
    """A ticket as the API shows it; ``full`` adds the validation report, flags and fields."""
    names = present.staff_names({ticket.assignee_id} if ticket.assignee_id else set())
    data: dict[str, Any] = {
        "number": ticket.number,
        "state": ticket.state,
        "level": ticket.level,
        "priority": ticket.priority,
        "request_type": ticket.request_type,
        "serial": ticket.serial,
        "model": ticket.model_code,
        "assignee": names.get(ticket.assignee_id or 0),
        # Set while the assignee has not taken the ticket yet (it moves on if they do not).
        "offered_at": _iso(ticket.offered_at),
        "created_at": ticket.created_at.isoformat(),
        "first_response_due": _iso(ticket.first_response_due),
        "resolution_due": _iso(ticket.resolution_due),
        "overdue": is_overdue(ticket, now()),
    }
    if full:
        run = ticket.runs[-1] if ticket.runs else None
        data |= {
            "fault": ticket.fault,
            "contact_name": ticket.contact_name,
            "phone": ticket.phone,
            "address": ticket.address,
            "fields": ticket.fields,
            "flags": ticket.flags,
            "validation": (
                {"ok": run.ok, "results": run.results, "autofilled": run.autofilled}
                if run
                else None
            ),
            "first_response_at": _iso(ticket.first_response_at),
            "resolved_at": _iso(ticket.resolved_at),
            "unreachable_reason": ticket.unreachable_reason,
            "notes": [
                {"at": e.at.isoformat(), "by": e.actor, "text": e.note}
                for e in audit.history("ticket", ticket.number)
                if e.action == "ticket.note"
            ],
        }
    return data


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@bp.get("/tickets")
def tickets_list() -> Response:
    """Tickets by state (default: open), level, priority, assignee (me|none|id), overdue=1."""
    args = {k: v for k, v in request.args.items() if v}
    if "state" in args and args["state"] not in {"open", "all", *(s.value for s in TicketState)}:
        return _error(400, "bad_state")
    rows = db.session.scalars(ticket_query(args, _me().id, now()).limit(LIST_LIMIT)).all()
    return jsonify({"tickets": [ticket_json(t) for t in rows]})


def _ticket(number: str) -> Ticket | None:
    return tickets.by_number(number)


@bp.get("/tickets/<number>")
def ticket(number: str) -> Response:
    """One ticket with its validation report."""
    found = _ticket(number)
    if found is None:
        return _error(404, "not_found")
    return jsonify(ticket_json(found, full=True))


def _ticket_error(exc: TicketError) -> Response:
    return _error(409, "refused", f"{exc.zh} / {exc.en}")


@bp.patch("/tickets/<number>")
def ticket_patch(number: str) -> Response:
    """Change state, level (with "note"), assignee (username, id or null) or priority."""
    found = _ticket(number)
    if found is None:
        return _error(404, "not_found")
    body = _body()
    known = {"state", "level", "assignee", "priority", "note"}
    if not body or not set(body) <= known or set(body) == {"note"}:
        return _error(400, "bad_fields", "send state, level, assignee or priority (and note)")
    note = str(body.get("note") or "")
    t = now()
    try:
        if "assignee" in body:
            target = body["assignee"]
            if target is None:
                tickets_assign_none(found)
            else:
                member = _find_staff(target)
                if member is None:
                    return _error(400, "bad_assignee", "no active account with that name or id")
                apply(found, "assign", {"staff_id": str(member.id)}, _me(), t)
        if "level" in body:
            apply(found, "level", {"level": str(body["level"]), "note": note}, _me(), t)
        if "priority" in body:
            apply(found, "priority", {"priority": str(body["priority"]), "note": note}, _me(), t)
        if "state" in body:
            state = str(body["state"])
            if state not in {s.value for s in TicketState}:
                return _error(400, "bad_state")
            if state == TicketState.WAITING_CUSTOMER and not note.strip():
                return _error(400, "note_required", "say what the customer should provide")
            me = _me()
            if found.offered_at is not None and found.assignee_id == me.id:
                # The agent it was offered to works it: that takes it.
                handoffs.take_ticket(found, me, t, notify=state == TicketState.ASSIGNED)
            tickets.transition(found, state, _actor(), note or None, now=t)
            if state == TicketState.RESOLVED:
                csat.ask(found.id, found.number, found.openid, t)
    except TicketError as exc:
        db.session.rollback()
        return _ticket_error(exc)
    db.session.commit()
    return jsonify(ticket_json(found, full=True))


@bp.get("/photos/<int:photo_id>")
def photo(photo_id: int) -> Response:
    """A photo a user sent in a conversation, as JPEG (``size=thumb`` for the preview)."""
    from .conversations import photo_file

    thumb = request.args.get("size") == "thumb"
    path = photo_file(photo_id, thumb)
    if not thumb:
        audit.record(_actor(), "chat_photo.view", "chat_photo", str(photo_id))
        db.session.commit()
    return Response(path.read_bytes(), mimetype="image/jpeg")


def tickets_assign_none(ticket: Ticket) -> None:
    """Take the assignee off a ticket (audited)."""
    before = ticket.assignee_id
    ticket.assignee_id = None
    ticket.offered_at = None
    audit.record(
        _actor(),
        "ticket.assign",
        "ticket",
        ticket.number,
        before={"assignee": before},
        after={"assignee": None},
    )


def _find_staff(target: Any) -> staff.Staff | None:
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return staff.load(int(target))
    if isinstance(target, str):
        member = staff.by_username(target)
        return member if member is not None and member.active else None
    return None


@bp.post("/tickets/<number>/messages")
def ticket_message(number: str) -> Response | tuple[Response, int]:
    """A message to the customer about the ticket (WeChat, inside the 48-hour window)."""
    found = _ticket(number)
    if found is None:
        return _error(404, "not_found")
    text = _body().get("text")
    if not isinstance(text, str) or not text.strip():
        return _error(400, "text_required", 'send {"text": "..."}')
    if len(text.strip()) > 1500:
        return _error(400, "too_long", "at most 1500 characters")
    sent = reply_to_customer(found, text.strip(), _actor(), _me().id, now())
    db.session.commit()
    body = {"number": found.number, "sent": sent, "unreachable_reason": None}
    if not sent:
        body["unreachable_reason"] = found.unreachable_reason
    return jsonify(body), 201


@bp.post("/tickets/<number>/notes")
def ticket_note(number: str) -> Response | tuple[Response, int]:
    """An internal note on the ticket (never shown to the customer)."""
    found = _ticket(number)
    if found is None:
        return _error(404, "not_found")
    text = _body().get("text")
    if not isinstance(text, str) or not text.strip():
        return _error(400, "text_required", 'send {"text": "..."}')
    apply(found, "note", {"note": text}, _me(), now())
    db.session.commit()
    return jsonify({"number": found.number, "note": text.strip()[:2000]}), 201


@bp.get("/openapi.json")
def openapi() -> Response:
    """The API described as OpenAPI 3.1 (no authentication needed to read it)."""
    from .openapi import document

    return jsonify(document(current_app.config["PUBLIC_BASE_URL"]))
