"""How the console and the API show conversations: the queue rows and transcript lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from kefu import chat_photos, handoffs
from kefu.extensions import db
from kefu.models import ChatMessage, Handoff
from kefu.outbox import OutboxMessage
from kefu.staff import Staff


def reason_label(reason: str) -> str:
    """A handoff reason as agents read it."""
    labels = {
        "requested": _("用户要求人工"),
        "angry": _("情绪不满/投诉"),
        "security": _("安全敏感"),
        "repeated_failure": _("多次未答上"),
        "menu": _("菜单转人工"),
    }
    return labels.get(reason, reason)


def sla_label(badge: str) -> str:
    """The SLA badge's words."""
    return {"ok": _("正常"), "soon": _("即将超时"), "overdue": _("已超时")}.get(badge, badge)


def last_lines(openids: list[str]) -> dict[str, ChatMessage]:
    """The latest transcript line of each user."""
    if not openids:
        return {}
    latest = (
        select(func.max(ChatMessage.id))
        .where(ChatMessage.openid.in_(openids))
        .group_by(ChatMessage.openid)
        .scalar_subquery()
    )
    rows = db.session.scalars(select(ChatMessage).where(ChatMessage.id.in_(latest)))
    return {m.openid: m for m in rows}


def staff_names(ids: set[int]) -> dict[int, str]:
    """Display names by staff id."""
    if not ids:
        return {}
    rows = db.session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids)))
    return {i: n for i, n in rows}


def conversation_status(handoff: Handoff) -> str:
    """ "waiting" (nobody claimed it), "open" (an agent owns it) or "closed"."""
    if handoff.status != "open":
        return "closed"
    return "open" if handoff.claimed_at is not None else "waiting"


def handoff_rows(
    items: list[Handoff], now: datetime, with_viewers: bool = True
) -> list[dict[str, Any]]:
    """Queue rows: reason, waiting time, SLA badge, owner, last message, who is viewing."""
    lines = last_lines([h.openid for h in items if h.openid])
    names = staff_names({h.assignee_id for h in items if h.assignee_id})
    watching = handoffs.viewers_of([h.id for h in items], now) if with_viewers else {}
    rows = []
    for h in items:
        last = lines.get(h.openid or "")
        badge = handoffs.sla(h, now) if h.status == "open" else "ok"
        rows.append(
            {
                "id": h.id,
                "openid": h.openid,
                "status": conversation_status(h),
                "reason": h.reason,
                "reason_label": reason_label(h.reason),
                "group": h.group,
                "waiting_since": h.created_at.isoformat(),
                "waiting_seconds": int((now - h.created_at).total_seconds()),
                "sla": badge,
                "sla_label": sla_label(badge),
                "overdue": h.overdue_at is not None,
                "assignee": names.get(h.assignee_id) if h.assignee_id else None,
                "assignee_id": h.assignee_id,
                "claimed": h.claimed_at is not None,
                "last_message": (
                    {
                        "text": last.text[:200],
                        "at": last.created_at.isoformat(),
                        "from": author(last),
                    }
                    if last
                    else None
                ),
                "viewers": watching.get(h.id, []),
                "url": url_for("console.conversation", handoff_id=h.id),
            }
        )
    return rows


def author(line: ChatMessage) -> str:
    """ "user", "bot" or "agent"."""
    if line.direction in ("in", "web"):  # "web": sent from a kefu page, not through WeChat
        return "user"
    return "agent" if line.staff_id else "bot"


def transcript(openid: str | None, after: int = 0, limit: int = 300) -> list[ChatMessage]:
    """The user's transcript (the latest ``limit`` lines after message id ``after``), in order."""
    if not openid:
        return []
    rows = db.session.scalars(
        select(ChatMessage)
        .where(ChatMessage.openid == openid, ChatMessage.id > after)
        .order_by(ChatMessage.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def deliveries(lines: list[ChatMessage]) -> dict[int, OutboxMessage]:
    """The outbox row of each agent line (by line id): how its sending went."""
    refs = [f"chat:{m.id}" for m in lines if m.staff_id]
    if not refs:
        return {}
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.ref.in_(refs)))
    return {int(r.ref.split(":", 1)[1]): r for r in rows if r.ref}


def delivery_label(message: OutboxMessage | None) -> tuple[str, str]:
    """(css class, words) for an agent line's delivery."""
    if message is None:
        return "", ""
    if message.status == "sent":
        return "sent", _("已送达微信")
    if message.status == "final":
        if message.error_code == 45015:
            return "final", _("未送达：用户超过48小时未互动（45015），微信不允许再发客服消息")
        return "final", _(
            "未送达：%(reason)s（%(code)s）",
            reason=message.error_message or "",
            code=message.error_code or "",
        )
    if message.status == "failed":
        return "failed", _("发送失败，已放弃重试：%(reason)s", reason=message.error_message or "")
    return "pending", _("发送中")


def line_dicts(lines: list[ChatMessage]) -> list[dict[str, Any]]:
    """Transcript lines as JSON: who, text, time, and for agent lines the delivery."""
    names = staff_names({m.staff_id for m in lines if m.staff_id})
    sent = deliveries(lines)
    pictures = chat_photos.for_lines([m.id for m in lines if m.text == chat_photos.LINE_TEXT])
    zone = handoffs.duty().tz
    out = []
    for m in lines:
        css, words = delivery_label(sent.get(m.id)) if m.staff_id else ("", "")
        out.append(
            {
                "id": m.id,
                "from": author(m),
                "agent": names.get(m.staff_id) if m.staff_id else None,
                "text": m.text,
                "at": m.created_at.isoformat(),
                "time": m.created_at.astimezone(zone).strftime("%H:%M"),
                "delivery": css or None,
                "delivery_label": words or None,
                "error_code": sent[m.id].error_code if m.id in sent else None,
                "photo": photo_dict(pictures[m.id]) if m.id in pictures else None,
            }
        )
    return out


def photo_dict(photo: chat_photos.ChatPhoto) -> dict[str, Any]:
    """A user's photo as the transcript shows it: links to the staff-only image, or why not."""
    stored = photo.status == chat_photos.PhotoStatus.STORED
    # The API's clients get the API's route (bearer tokens); pages get the console's.
    endpoint = "api.photo" if request.blueprint == "api" else "console.chat_photo"
    return {
        "status": photo.status,
        "url": url_for(endpoint, photo_id=photo.id) if stored else None,
        "thumb_url": url_for(endpoint, photo_id=photo.id, size="thumb") if stored else None,
        "label": {
            chat_photos.PhotoStatus.PENDING: _("图片下载中"),
            chat_photos.PhotoStatus.STORED: _("查看原图"),
        }.get(photo.status, _("图片无法获取（已过期或不是有效图片）")),
    }
