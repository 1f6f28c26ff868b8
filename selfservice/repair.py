"""The repair / warranty request on the web, and the ticket status page.

The same validation engine as the chat checks the form, with the same messages. Inside WeChat
the silent OAuth of the device page tells us the visitor's openid, which ties the ticket to
their chat: status queries and notifications find it there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from kefu import timeutil
from kefu.catalog import devices
from kefu.catalog.models import Device
from kefu.extensions import csrf, db, limiter
from kefu.i18n import current_lang
from kefu.requests import photos, validation
from kefu.requests.submit import submit
from kefu.tickets import service
from kefu.tickets.models import Channel, RequestType, Ticket, TicketState

from .blueprint import bp, current_installer

FIELDS = ("request_type", "serial", "fault", "contact_name", "phone", "address", "purchase_date")
NEXT_STEPS = {
    TicketState.NEW: ("机器人正在核对您的信息。", "The robot is checking your details."),
    TicketState.VALIDATED: (
        "信息已核对，正在为您安排专员。",
        "Your details are checked; a specialist is being assigned.",
    ),
    TicketState.ASSIGNED: (
        "专员正在处理，如需寄回设备会与您联系。",
        "A specialist is on it and will contact you if the device must be sent in.",
    ),
    TicketState.WAITING_CUSTOMER: (
        "需要您补充信息，请留意公众号消息或来电。",
        "We need something from you: watch for our message or call.",
    ),
    TicketState.RESOLVED: (
        "问题已处理。如仍有问题，可在规定天数内再次报修同一设备。",
        "Resolved. If the problem comes back, report the same device again within the window.",
    ),
    TicketState.CLOSED: ("工单已关闭。", "The ticket is closed."),
}


def _submit_limit() -> str:
    return str(current_app.config.get("REQUEST_SUBMIT_LIMIT", "10/hour;30/day"))


def visitor_openid() -> str | None:
    """The WeChat user behind this browser, learnt by OAuth (or a bound installer's)."""
    installer = current_installer()
    if installer is not None and installer.wechat_openid:
        return installer.wechat_openid
    openid = session.get("wx_openid")
    return str(openid) if openid else None


def prefill(device: Device | None) -> dict[str, str]:
    """Initial form values: the device's serial, and the visitor's last contact details."""
    values: dict[str, str] = {"request_type": RequestType.REPAIR}
    if device is not None:
        values["serial"] = device.serial
    openid = visitor_openid()
    if openid:
        last = db.session.scalar(
            select(Ticket)
            .where(Ticket.openid == openid, Ticket.phone != "")
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )
        if last is not None:
            values.update(contact_name=last.contact_name, phone=last.phone, address=last.address)
    return values


def form_context(device: Device | None, values: dict[str, str]) -> dict[str, Any]:
    """What the form template needs, for the device page's slot and the page of its own."""
    return {
        "form_device": device,
        "form_values": values,
        "form_errors": {},
        "ask_purchase_date": validation.needs_purchase_date(device),
        "today": timeutil.today(),
        "proof_kept": bool(session.get("proof_sha256")),
        "max_photo_mb": photos.max_bytes() // (1024 * 1024),
    }


@bp.app_context_processor
def _form_helpers() -> dict[str, Any]:
    return {
        "repair_prefill": prefill,
        "repair_needs_date": validation.needs_purchase_date,
        "repair_photo_mb": lambda: photos.max_bytes() // (1024 * 1024),
    }


@bp.get("/repair")
def repair_form() -> str:
    """The request form on a page of its own (``?d=<device token>`` prefills the device)."""
    device = devices.by_token(request.args.get("d", "")) if request.args.get("d") else None
    return render_template("selfservice/repair.html", **form_context(device, prefill(device)))


@bp.url_value_preprocessor
def _allow_photo_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs before every before_request hook (which may read the form): a phone camera's
    # photo is several MB, so this form alone may exceed the app's 1 MB default.
    if endpoint == "selfservice.repair_submit":
        request.max_content_length = photos.max_bytes() + 512 * 1024


@bp.post("/repair")
@csrf.exempt  # checked in the view, so a refused token shows the usual expired-page
@limiter.limit(_submit_limit, methods=["POST"])
def repair_submit() -> str | BaseResponse:
    """Check the request with the validation engine; file it, or show what to fix."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except Exception as exc:  # ValidationError: expired or missing token
        raise CSRFError(str(exc)) from exc
    lang = current_lang()
    now = datetime.now(UTC)
    today = timeutil.today(now)
    values = {name: (request.form.get(name) or "").strip()[:1000] for name in FIELDS}
    if values["request_type"] not in {t.value for t in RequestType}:
        values["request_type"] = RequestType.REPAIR
    device = devices.by_serial(values["serial"]) if values["serial"] else None
    errors: dict[str, str] = {}
    upload = request.files.get("proof")
    if upload is not None and upload.filename:
        try:
            stored = photos.store(upload.read(photos.max_bytes() + 1))
        except photos.PhotoError as exc:
            errors["proof"] = exc.message(lang)
        else:
            session["proof_sha256"] = stored.sha256
    engine_values: dict[str, Any] = {k: v for k, v in values.items() if v}
    if session.get("proof_sha256"):
        engine_values["proof_sha256"] = session["proof_sha256"]
    sources = {k: "user" for k in engine_values}
    report = validation.run(engine_values, sources, openid=visitor_openid(), today=today, now=now)
    for outcome in report.errors:
        if outcome.field == "serial" and outcome.code == "duplicate.open":
            continue
        errors.setdefault(outcome.field, outcome.message(lang))
    if report.duplicate is not None and not errors:
        openid = visitor_openid()
        if openid and report.duplicate.openid == openid:
            return redirect(
                url_for(".ticket_status", token=report.duplicate.status_token, duplicate=1)
            )
        # Matched by the phone number alone: whoever typed it is not shown that ticket.
        errors["serial"] = _(
            "这台设备已有以该手机号提交的处理中工单，无需重复提交；进度请在公众号回复“查询工单”查看。"
        )

    if errors:
        context = form_context(device, values)
        context["form_errors"] = errors
        return render_template("selfservice/repair.html", **context), 422  # type: ignore[return-value]
    ticket, _outcome = submit(report, channel=Channel.WEB, openid=visitor_openid(), now=now)
    session.pop("proof_sha256", None)
    db.session.commit()
    return redirect(url_for(".ticket_status", token=ticket.status_token, new=1))


def mask_name(name: str) -> str:
    """张三丰 -> 张**: enough for the customer to recognise, nothing for anyone else."""
    return (name[:1] + "*" * max(1, len(name) - 1)) if name else ""


def mask_phone(phone: str) -> str:
    """13912345678 -> 139****5678."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else ""


@bp.get("/t/<token>")
def ticket_status(token: str) -> str:
    """A ticket's status page, reached by its unguessable link (from the chat or the form)."""
    ticket = service.by_status_token(token)
    if ticket is None:
        abort(404)
    percent, steps = service.progress(ticket)
    due = ticket.resolution_due.astimezone(timeutil.local_zone()) if ticket.resolution_due else None
    labels = {state: service.STATE_LABELS[state] for state in service.STATE_LABELS}
    return render_template(
        "selfservice/ticket.html",
        ticket=ticket,
        tz=timeutil.local_zone(),
        percent=percent,
        steps=steps,
        state_labels=labels,
        next_step=NEXT_STEPS[TicketState(ticket.state)],
        due=due,
        masked_name=mask_name(ticket.contact_name),
        masked_phone=mask_phone(ticket.phone),
        model=ticket.device.model if ticket.device is not None else None,
        created=request.args.get("new") == "1",
        duplicate=request.args.get("duplicate") == "1",
        type_label={
            RequestType.REPAIR: (_("报修"), ""),
            RequestType.WARRANTY: (_("保修申请"), ""),
            RequestType.EXCHANGE: (_("换货申请"), ""),
        }[RequestType(ticket.request_type)][0],
    )
