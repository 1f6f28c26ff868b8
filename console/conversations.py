"""The live queue and the conversation page: claim, assign, reply through WeChat, hand back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from kefu import chat_photos, handoffs, staff, tickets
from kefu.extensions import db
from kefu.handoffs import CannedReply, HandoffError
from kefu.models import Handoff
from kefu.staff import Role

from . import present
from .blueprint import bp, current_staff, now, parse_int, record, role_required

MINE_LIMIT = 50


def handoff_error(code: str) -> str:
    """Why an action on a conversation was refused, in the page's language."""
    return {
        "closed": _("这个会话已经结束"),
        "gone": _("用户已取消关注，无法再联系"),
        "empty": _("请输入回复内容"),
        "too_long": _("回复最多 2000 字"),
        "inactive": _("这个同事的账号已停用"),
    }.get(code, code)


def queue_state(since: int | None) -> dict[str, Any]:
    """Everything the queue page shows, as JSON; a poll always gets the whole current state.

    The state is complete on every poll, so a page that lost its connection for a while shows
    exactly what it missed when it polls again; ``new`` names the arrivals since ``since``.
    """
    member = current_staff()
    assert member is not None
    t = now()
    handoffs.maybe_sweep(t)
    waiting = db.session.scalars(handoffs.waiting_query().limit(200)).all()
    mine = db.session.scalars(
        select(Handoff)
        .where(
            Handoff.status == "open",
            Handoff.claimed_at.is_not(None),
            Handoff.assignee_id == member.id,
        )
        .order_by(Handoff.created_at)
        .limit(MINE_LIMIT)
    ).all()
    newest = db.session.scalar(select(Handoff.id).order_by(Handoff.id.desc()).limit(1)) or 0
    rows = present.handoff_rows(list(waiting), t)
    return {
        "cursor": newest,
        "now": t.isoformat(),
        "waiting": rows,
        "mine": present.handoff_rows(list(mine), t),
        "new": [r["id"] for r in rows if r["id"] > since] if since is not None else [],
        "on_duty": member.on_duty,
    }


@bp.get("/")
def queue() -> str:
    """The live queue: waiting conversations oldest first, and the ones I own."""
    state = queue_state(None)
    return render_template("console/queue.html", state=state)


@bp.get("/queue.json")
def queue_poll() -> Response:
    """The queue's current state for the page's polling (``since``: the last cursor seen)."""
    raw = request.args.get("since", "")
    return jsonify(queue_state(int(raw) if raw.isdigit() else None))


def _handoff(handoff_id: int) -> Handoff:
    handoff = db.session.get(Handoff, handoff_id)
    if handoff is None:
        abort(404)
    return handoff


def conversation_context(handoff: Handoff) -> dict[str, Any]:
    """What the conversation page shows besides the transcript."""
    t = now()
    member = current_staff()
    assert member is not None
    devices = handoffs.devices_for(handoff.openid)
    open_tickets = [
        tk
        for tk in (tickets.for_openid(handoff.openid, limit=10) if handoff.openid else [])
        if tk.is_open
    ]
    known = {d.id for d in devices}
    devices += [tk.device for tk in open_tickets if tk.device and tk.device.id not in known]
    return {
        "handoff": handoff,
        "status": present.conversation_status(handoff),
        "row": present.handoff_rows([handoff], t, with_viewers=False)[0],
        "lines": present.line_dicts(present.transcript(handoff.openid)),
        "window": handoffs.window(handoff.openid, t),
        "devices": devices,
        "tickets": open_tickets,
        "canned": db.session.scalars(select(CannedReply).order_by(CannedReply.title)).all(),
        "colleagues": [s for s in staff.colleagues() if s.id != member.id],
        "viewers": handoffs.touch_presence(handoff, member, t),
        "owner": present.staff_names({handoff.assignee_id}).get(handoff.assignee_id or 0),
        "now": t,
    }


@bp.get("/c/<int:handoff_id>")
def conversation(handoff_id: int) -> str:
    """One conversation: transcript, device, tickets, window and quota, and the actions."""
    handoff = _handoff(handoff_id)
    context = conversation_context(handoff)
    record("handoff.view", "handoff", handoff.id)
    page = render_template("console/conversation.html", **context)
    # Committed after rendering: a commit expires every loaded row, and the page reads many.
    db.session.commit()
    return page


@bp.get("/c/<int:handoff_id>/poll.json")
def conversation_poll(handoff_id: int) -> Response:
    """New transcript lines after ``after``, delivery states, viewers and status, as JSON."""
    handoff = _handoff(handoff_id)
    member = current_staff()
    assert member is not None
    t = now()
    after = parse_int(request.args.get("after")) or 0
    viewers = handoffs.touch_presence(handoff, member, t)
    # Recent agent lines are sent again so their delivery state (sent, 45015) updates in place.
    lines = present.transcript(handoff.openid, after=max(0, after - 50) if after else 0)
    window = handoffs.window(handoff.openid, t)
    db.session.commit()
    return jsonify(
        {
            "status": present.conversation_status(handoff),
            "lines": present.line_dicts(lines),
            "viewers": [s.display_name for s in viewers],
            "window_open": window.open,
        }
    )


def _act(handoff_id: int, action: str) -> Response:
    handoff = _handoff(handoff_id)
    member = current_staff()
    assert member is not None
    t = now()
    try:
        if action == "claim":
            handoffs.claim(handoff, member, t)
            flash(_("已接入，机器人不再回复这位用户"), "ok")
        elif action == "assign":
            colleague = staff.load(parse_int(request.form.get("staff_id")))
            if colleague is None:
                flash(_("请选择一位同事"), "error")
                return redirect(url_for(".conversation", handoff_id=handoff.id))
            handoffs.assign(handoff, colleague, member, t)
            flash(_("已转给 %(name)s", name=colleague.display_name), "ok")
        elif action == "reply":
            handoffs.reply(handoff, member, request.form.get("text") or "", t)
            if not handoffs.window(handoff.openid, t).open:
                flash(_("已记录，但48小时窗口已关闭，微信很可能拒收（45015）"), "error")
        elif action == "close":
            handoffs.hand_back(handoff, member, t)
            flash(_("已交还机器人，用户已收到通知"), "ok")
    except HandoffError as exc:
        db.session.rollback()
        flash(handoff_error(exc.code), "error")
        return redirect(url_for(".conversation", handoff_id=handoff_id))
    db.session.commit()
    if action == "close":
        return redirect(url_for(".queue"))
    return redirect(
        url_for(".conversation", handoff_id=handoff.id) + ("#reply" if action == "reply" else "")
    )


@bp.post("/c/<int:handoff_id>/claim")
def claim(handoff_id: int) -> Response:
    """Take the conversation."""
    return _act(handoff_id, "claim")


@bp.post("/c/<int:handoff_id>/assign")
def assign(handoff_id: int) -> Response:
    """Give the conversation to a colleague."""
    return _act(handoff_id, "assign")


@bp.post("/c/<int:handoff_id>/reply")
def reply(handoff_id: int) -> Response:
    """Send a reply to the user in WeChat (through the outbox)."""
    return _act(handoff_id, "reply")


@bp.post("/c/<int:handoff_id>/close")
def hand_back(handoff_id: int) -> Response:
    """Hand the conversation back to the bot; the user is told."""
    return _act(handoff_id, "close")


@bp.get("/canned")
@role_required(Role.SUPERVISOR)
def canned() -> str:
    """Canned replies: list, add, delete (supervisors)."""
    rows = db.session.scalars(select(CannedReply).order_by(CannedReply.title)).all()
    return render_template("console/canned.html", rows=rows)


@bp.post("/canned")
@role_required(Role.SUPERVISOR)
def canned_add() -> Response:
    """Add a canned reply."""
    title = (request.form.get("title") or "").strip()
    text = (request.form.get("text") or "").strip()
    if not title or not text or len(title) > 100 or len(text) > 2000:
        flash(_("标题（100 字内）和内容（2000 字内）都要填写"), "error")
        return redirect(url_for(".canned"))
    row = CannedReply(title=title, text=text)
    db.session.add(row)
    db.session.flush()
    record("canned.add", "canned_reply", row.id, after={"title": title})
    db.session.commit()
    flash(_("已添加"), "ok")
    return redirect(url_for(".canned"))


@bp.post("/canned/<int:row_id>/delete")
@role_required(Role.SUPERVISOR)
def canned_delete(row_id: int) -> Response:
    """Delete a canned reply."""
    row = db.session.get(CannedReply, row_id)
    if row is None:
        abort(404)
    record("canned.delete", "canned_reply", row.id, before={"title": row.title})
    db.session.delete(row)
    db.session.commit()
    flash(_("已删除"), "ok")
    return redirect(url_for(".canned"))


def photo_file(photo_id: int, thumb: bool) -> Path:
    """The stored file of a user's photo (or its preview); 404 while it is not stored."""
    photo = db.session.get(chat_photos.ChatPhoto, photo_id)
    if photo is None or photo.status != chat_photos.PhotoStatus.STORED or not photo.sha256:
        abort(404)
    path = chat_photos.path_for(photo.sha256, thumb=thumb)
    if not path.is_file():
        abort(404)
    return path


@bp.get("/photo/<int:photo_id>")
def chat_photo(photo_id: int) -> Response:
    """A photo a user sent in the conversation (staff only; ``size=thumb`` for the preview)."""
    thumb = request.args.get("size") == "thumb"
    path = photo_file(photo_id, thumb)
    if not thumb:
        # Opening the full picture is audited; the transcript's previews are not.
        record("chat_photo.view", "chat_photo", photo_id)
        db.session.commit()
    # Read whole (a cleaned photo is a few hundred KB), so no file handle outlives the request.
    return Response(path.read_bytes(), mimetype="image/jpeg")
