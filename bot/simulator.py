"""``/demo/chat``: try the bot in a browser, through the same dialog as WeChat (demo only).

Registered only when ``DEMO_CHAT`` is on (``make demo`` turns it on), so a production server
has no such route.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response

from kefu import dialog
from kefu.extensions import db
from kefu.models import ChatMessage, Handoff

bp = Blueprint("simulator", __name__, url_prefix="/demo/chat")

REASONS = {
    "requested": _l("用户要求人工"),
    "angry": _l("用户情绪激动或投诉"),
    "security": _l("涉及他人设备、密码或绑定"),
    "repeated_failure": _l("连续两次未能解答"),
    "menu": _l("菜单转人工"),
}


def _openid() -> str:
    if "demo_openid" not in session:
        session["demo_openid"] = "demo-" + secrets.token_urlsafe(12)
    return str(session["demo_openid"])


@bp.get("")
def chat() -> str:
    """The conversation so far and a box to type the next message."""
    openid = _openid()
    lines = db.session.scalars(
        select(ChatMessage)
        .where(ChatMessage.openid == openid)
        .order_by(ChatMessage.created_at, ChatMessage.id)
    ).all()
    handoff = db.session.scalars(
        select(Handoff)
        .where(Handoff.openid == openid, Handoff.status == "open")
        .order_by(Handoff.id.desc())
    ).first()
    reason = str(REASONS.get(handoff.reason, handoff.reason)) if handoff else None
    return render_template("bot/simulator.html", lines=lines, handoff_reason=reason)


@bp.post("")
def send() -> Response:
    """Send one message through the bot's dialog, as a WeChat text message would be."""
    text = request.form.get("text", "").strip()[:500]
    if text:
        dialog.respond(_openid(), text, datetime.now(UTC))
        db.session.commit()
    return redirect(url_for("simulator.chat") + "#end")


@bp.post("/reset")
def reset() -> Response:
    """Start over as a new user."""
    dialog.forget_user(_openid())
    db.session.commit()
    session.pop("demo_openid", None)
    return redirect(url_for("simulator.chat"))
