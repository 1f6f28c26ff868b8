"""Knowledge base in the console: browse, search, edit, add; unanswered questions; search."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import String, cast, func, or_, select
from werkzeug.wrappers import Response

from kefu import kb, unanswered
from kefu.catalog.models import Device, Installer, KbEntryProduct
from kefu.extensions import db
from kefu.imports import ImportError_
from kefu.models import Handoff, KbEntry
from kefu.tickets import Ticket, by_number
from kefu.tickets.numbers import looks_like_number

from .blueprint import bp, now, parse_int, record

PAGE_SIZE = 50


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@bp.get("/kb", endpoint="kb")
def kb_list() -> str:
    """Browse and search the knowledge base."""
    q = (request.args.get("q") or "").strip()[:100]
    page = parse_int(request.args.get("page")) or 1
    query = select(KbEntry).order_by(KbEntry.id)
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                KbEntry.id.ilike(pattern, escape="\\"),
                KbEntry.question.ilike(pattern, escape="\\"),
                KbEntry.answer.ilike(pattern, escape="\\"),
                cast(KbEntry.alternates, String).ilike(pattern, escape="\\"),
            )
        )
    rows = db.session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    total = db.session.scalar(select(func.count()).select_from(KbEntry))
    return render_template(
        "console/kb.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        q=q,
        total=total,
    )


def _form_of(entry: KbEntry | None) -> dict[str, str]:
    if entry is None:
        return {"audience": "all"}
    products = db.session.scalars(
        select(KbEntryProduct.product).where(KbEntryProduct.kb_entry_id == entry.id)
    ).all()
    return {
        "id": entry.id,
        "question": entry.question,
        "alternates": "\n".join(entry.alternates),
        "answer": entry.answer,
        "audience": entry.audience,
        "tags": ", ".join(entry.tags),
        "products": ", ".join(products),
    }


def _split(raw: str, lines: bool = False) -> list[str]:
    parts = raw.splitlines() if lines else raw.replace("，", ",").replace("|", ",").split(",")
    return [p.strip() for p in parts if p.strip()]


def save_entry(form: dict[str, str], existing: KbEntry | None) -> list[str]:
    """Validate one entry as the import does and upsert it; returns the errors (none: saved)."""
    record_ = {
        "id": existing.id if existing else form.get("id", "").strip(),
        "question": form.get("question", ""),
        "alternates": _split(form.get("alternates", ""), lines=True),
        "answer": form.get("answer", ""),
        "audience": form.get("audience", "all"),
        "tags": _split(form.get("tags", "")),
        "products": _split(form.get("products", "")),
    }
    if existing is None and db.session.get(KbEntry, record_["id"]) is not None:
        return [_("这个 id 已经存在，请换一个或去编辑原条目")]
    try:
        rows = kb.validate([(1, record_)])
    except ImportError_ as exc:
        # The import's messages name line 1; a form has no lines.
        return [e.split(": ", 1)[-1] for e in exc.errors]
    kb.upsert(rows)
    return []


@bp.route("/kb/new", methods=["GET", "POST"])
def kb_new() -> str | Response | tuple[str, int]:
    """Add an entry (optionally started from an unanswered question)."""
    if request.method == "POST":
        form = request.form.to_dict()
        errors = save_entry(form, None)
        if errors:
            db.session.rollback()
            return render_template(
                "console/kb_edit.html", form=form, entry=None, errors=errors
            ), 400
        entry_id = form["id"].strip()
        unanswered.mark_handled(request.form.getlist("from_text"), entry_id, now())
        record("kb.add", "kb_entry", entry_id, after={"question": form.get("question", "")[:200]})
        db.session.commit()
        flash(_("已添加，机器人立即可以回答"), "ok")
        return redirect(url_for(".kb_edit", entry_id=entry_id))
    question = (request.args.get("question") or "").strip()[:500]
    form = {"audience": "all", "question": question}
    return render_template(
        "console/kb_edit.html",
        form=form,
        entry=None,
        errors=[],
        from_texts=request.args.getlist("t"),
    )


@bp.route("/kb/<entry_id>", methods=["GET", "POST"])
def kb_edit(entry_id: str) -> str | Response | tuple[str, int]:
    """Edit an entry; the change reaches every worker's index on its next message."""
    entry = db.session.get(KbEntry, entry_id)
    if entry is None:
        abort(404)
    if request.method == "POST":
        before = {"question": entry.question, "answer": entry.answer[:500]}
        form = request.form.to_dict()
        errors = save_entry(form, entry)
        if errors:
            db.session.rollback()
            return render_template(
                "console/kb_edit.html", form=form, entry=entry, errors=errors
            ), 400
        record(
            "kb.edit",
            "kb_entry",
            entry_id,
            before=before,
            after={"question": form.get("question", "")[:200]},
        )
        db.session.commit()
        flash(_("已保存"), "ok")
        return redirect(url_for(".kb_edit", entry_id=entry_id))
    return render_template("console/kb_edit.html", form=_form_of(entry), entry=entry, errors=[])


@bp.get("/unanswered", endpoint="unanswered")
def unanswered_list() -> str:
    """What the bot could not answer, grouped by similarity, most asked first."""
    days = min(parse_int(request.args.get("days")) or 7, 90)
    groups = unanswered.groups(now(), days=days)
    return render_template("console/unanswered.html", groups=groups, days=days)


@bp.post("/unanswered/alternate")
def unanswered_alternate() -> Response:
    """Add an unanswered question as another phrasing of an existing entry."""
    entry = db.session.get(KbEntry, (request.form.get("entry_id") or "").strip())
    text = (request.form.get("text") or "").strip()
    if entry is None:
        flash(_("没有这个条目 id，请核对"), "error")
        return redirect(url_for(".unanswered"))
    if not text or len(text) > 500:
        flash(_("问题内容不能为空"), "error")
        return redirect(url_for(".unanswered"))
    form = _form_of(entry)
    if text not in entry.alternates and text != entry.question:
        form["alternates"] = "\n".join([*entry.alternates, text])
    errors = save_entry(form, entry)
    if errors:
        db.session.rollback()
        flash("；".join(errors), "error")
        return redirect(url_for(".unanswered"))
    unanswered.mark_handled(request.form.getlist("from_text") or [text], entry.id, now())
    record("kb.alternate", "kb_entry", entry.id, after={"alternate": text})
    db.session.commit()
    flash(_("已加为“%(q)s”的另一种问法，机器人立即可以回答", q=entry.question), "ok")
    return redirect(url_for(".unanswered"))


@bp.get("/search")
def search() -> str:
    """Find by phone (that customer's devices, tickets, conversations), serial, ticket, openid."""
    q = (request.args.get("q") or "").strip()[:100]
    found: dict[str, Any] = {"tickets": [], "devices": [], "handoffs": []}
    if q:
        found = find(q)
        record("search", "search", q[:60])
        db.session.commit()
    return render_template("console/search.html", q=q, found=found)


def find(q: str) -> dict[str, Any]:
    """Everything matching ``q``: a ticket number, a serial, a phone number or an openid."""
    from kefu.accounts import normalise_phone
    from kefu.catalog.devices import normalise_serial

    tickets_found: list[Ticket] = []
    if looks_like_number(q):
        ticket = by_number(q)
        if ticket is not None:
            tickets_found.append(ticket)
    phone = normalise_phone(q)
    serial = normalise_serial(q)
    if phone.isdigit() and len(phone) >= 7:
        tickets_found += db.session.scalars(
            select(Ticket).where(Ticket.phone == phone).order_by(Ticket.id.desc()).limit(50)
        )
    tickets_found += db.session.scalars(
        select(Ticket)
        .where(or_(Ticket.serial == serial, Ticket.openid == q))
        .order_by(Ticket.id.desc())
        .limit(50)
    )
    unique = list({t.id: t for t in tickets_found}.values())
    serials = {serial} | {t.serial for t in unique if t.serial}
    devices_found = list(db.session.scalars(select(Device).where(Device.serial.in_(serials))))
    # An installer's phone finds the devices they registered.
    installer = db.session.scalar(select(Installer).where(Installer.phone == phone))
    if installer is not None:
        devices_found += db.session.scalars(
            select(Device).where(Device.installer_id == installer.id).limit(100)
        )
    devices_found = list({d.id: d for d in devices_found}.values())
    openids = {q} | {t.openid for t in unique if t.openid}
    handoffs_found = db.session.scalars(
        select(Handoff).where(Handoff.openid.in_(openids)).order_by(Handoff.id.desc()).limit(50)
    ).all()
    return {"tickets": unique, "devices": devices_found, "handoffs": handoffs_found}
