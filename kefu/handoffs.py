"""Conversations handed to a person: the console queue, routing, claims, replies, hand-back.

The dialog opens a handoff (:func:`opened`); agents claim, answer and hand back through the
functions here, whichever front door they use (console pages or ``/api/v1``). Replies reach the
user through the outbox (WeChat's customer-service message API, off the reply path). Nothing
here commits except the CLI and :func:`sweep_job`; callers own the transaction.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import ForeignKey, Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from . import accounts, chat_photos, reports
from .catalog.models import Device
from .extensions import db
from .models import ChatMessage, Conversation, Handoff, Subscriber, UTCDateTime, utcnow
from .staff import SkillGroup, Staff

REASONS = ("requested", "angry", "security", "repeated_failure", "menu")
# A colleague counts as viewing a conversation while their page polled within this time.
PRESENCE_TTL = timedelta(seconds=30)
CATEGORY_GROUPS = {
    "camera": SkillGroup.CAMERAS,
    "nvr": SkillGroup.RECORDERS,
    "lock": SkillGroup.LOCKS,
    "doorbell": SkillGroup.DOORBELLS,
}
DEFAULT_RULES: list[dict[str, str]] = [
    {"role": "installer", "group": SkillGroup.INSTALLERS.value},
    *({"category": c, "group": g.value} for c, g in CATEGORY_GROUPS.items()),
]
_SERIAL_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{5,63}")

TEXT = {
    "notice": (
        "已为您转接人工客服，请稍候，客服接入前您可以继续描述问题或发送图片。"
        "您前面还有 {queue} 人在等，通常约 {wait} 分钟内回复。人工服务时间：{hours}。"
        "不需要人工了请回复“取消”。"
    ),
    "notice_off_duty": (
        "现在是人工客服休息时间（服务时间：{hours}）。您的消息已保存，"
        "客服将在{next_start}上班后尽快回复您。不需要人工了请回复“取消”。"
    ),
    "overdue": "抱歉让您久等了，客服都在忙，您的消息已记录，我们会尽快回复您。",
    "closed": "本次人工服务已结束，感谢您的耐心。之后由智能客服为您服务，如需人工请回复“人工”。",
    "withdrawn": "好的，已取消人工服务，由智能客服继续为您服务。需要时再回复“人工”即可。",
    "idle": "由于长时间没有新消息，本次人工服务已结束。如还需要人工客服，请回复“人工”。",
    "idle_waiting": (
        "客服暂时还没有接入，您的消息已保存，客服接入后会在这里回复您。"
        "在此期间智能客服可以继续回答您的问题。"
    ),
}
WEEKDAYS_ZH = "一二三四五六日"


class CannedReply(db.Model):  # type: ignore[name-defined]
    """A ready-made answer agents insert into a reply."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Presence(db.Model):  # type: ignore[name-defined]
    """Who has a conversation open in the console right now (refreshed by the page's polling)."""

    __tablename__ = "console_presence"

    handoff_id: Mapped[int] = mapped_column(
        ForeignKey("handoffs.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HandoffError(ValueError):
    """An action that does not apply to the conversation as it is now; ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- duty hours -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duty:
    """When agents are on duty: a daily span of local time on some weekdays."""

    start: time
    end: time
    days: frozenset[int]  # ISO weekdays, 1 = Monday
    tz: ZoneInfo

    def on(self, now: datetime) -> bool:
        """Whether ``now`` falls in duty time."""
        local = now.astimezone(self.tz)
        # An end of 24:00 (``time.max``) includes the day's last minute.
        before_end = local.time() < self.end or self.end == time.max
        return local.isoweekday() in self.days and self.start <= local.time() and before_end

    def next_start(self, now: datetime) -> datetime:
        """The next moment duty begins (``now`` itself when on duty)."""
        if self.on(now):
            return now
        local = now.astimezone(self.tz)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            start = datetime.combine(day, self.start, self.tz)
            if day.isoweekday() in self.days and start > local:
                return start.astimezone(UTC)
        return now

    def label(self) -> str:
        """Hours as users read them: "每天 09:00-21:00", "周一至周五 09:00-18:00"."""
        end = "24:00" if self.end == time.max else f"{self.end:%H:%M}"
        span = f"{self.start:%H:%M}-{end}"
        if self.days == frozenset(range(1, 8)):
            return f"每天 {span}"
        ordered = sorted(self.days)
        if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
            return f"周{WEEKDAYS_ZH[ordered[0] - 1]}至周{WEEKDAYS_ZH[ordered[-1] - 1]} {span}"
        return "周" + "、".join(WEEKDAYS_ZH[d - 1] for d in ordered) + f" {span}"


def duty() -> Duty:
    """The duty hours from CONSOLE_DUTY_HOURS / CONSOLE_DUTY_DAYS, in TIMEZONE."""
    cfg = current_app.config
    try:
        hours, days = cfg["CONSOLE_DUTY_HOURS"], cfg["CONSOLE_DUTY_DAYS"]
    except KeyError as exc:
        raise RuntimeError(f"CONSOLE_DUTY_HOURS/DAYS or TIMEZONE invalid: {exc}") from exc
    return _duty(str(hours), str(days), str(cfg.get("TIMEZONE") or "Asia/Shanghai"))


@lru_cache(maxsize=16)
def _duty(hours: str, day_spec: str, zone: str) -> Duty:
    # Parsed once per setting: every handoff notice and sweep asks for the hours.
    try:
        start_s, end_s = hours.split("-")
        start = time.fromisoformat(start_s.strip())
        # "24:00" is the end of the day: "00:00-24:00" means agents are always on duty.
        end = time.max if end_s.strip() == "24:00" else time.fromisoformat(end_s.strip())
        days: set[int] = set()
        for part in day_spec.split(","):
            lo, _, hi = part.strip().partition("-")
            days.update(range(int(lo), int(hi or lo) + 1))
        tz = ZoneInfo(zone)
    except (ValueError, KeyError) as exc:
        raise RuntimeError(f"CONSOLE_DUTY_HOURS/DAYS or TIMEZONE invalid: {exc}") from exc
    return Duty(start, end, frozenset(d for d in days if 1 <= d <= 7), tz)


def pickup_deadline(handoff: Handoff) -> datetime:
    """When a waiting conversation becomes overdue: the pickup time, counted from duty start."""
    start = duty().next_start(handoff.created_at)
    return start + timedelta(minutes=current_app.config["HANDOFF_PICKUP_MINUTES"])


def sla(handoff: Handoff, now: datetime) -> str:
    """The queue's badge: "ok", "soon" (under a minute left) or "overdue"."""
    if handoff.claimed_at is not None:
        return "ok"
    deadline = pickup_deadline(handoff)
    if handoff.overdue_at is not None or now >= deadline:
        return "overdue"
    return "soon" if deadline - now <= timedelta(minutes=1) else "ok"


# --- routing ----------------------------------------------------------------------------------


def _rules() -> list[dict[str, str]]:
    raw = str(current_app.config.get("CONSOLE_ROUTING") or "").strip()
    if not raw:
        return DEFAULT_RULES
    try:
        rules = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"CONSOLE_ROUTING must be a JSON list: {exc}") from exc
    if not isinstance(rules, list) or not all(isinstance(r, dict) and "group" in r for r in rules):
        raise RuntimeError('CONSOLE_ROUTING must be a JSON list of {..., "group": ...} objects')
    return [{str(k): str(v) for k, v in r.items()} for r in rules]


def group_for(category: str | None, level: str | None, role: str) -> str:
    """The skill group for work about ``category`` at ``level`` from a user of ``role``."""
    facts = {"category": category or "", "level": level or "", "role": role}
    for rule in _rules():
        conditions = {k: v for k, v in rule.items() if k != "group"}
        if conditions and all(facts.get(k) == v for k, v in conditions.items()):
            return rule["group"]
    return SkillGroup.GENERAL.value


def role_of(openid: str | None) -> str:
    """ "installer" for a verified installer's WeChat, else "end_user"."""
    if openid and accounts.approved_by_openid(openid) is not None:
        return "installer"
    return "end_user"


def pick_agent(group: str, exclude: set[int] | None = None) -> Staff | None:
    """The on-duty member of ``group`` whose turn it is (assigned longest ago), if any."""
    members = [
        s
        for s in db.session.scalars(
            select(Staff).where(Staff.active.is_(True), Staff.on_duty.is_(True))
        )
        if group in (s.groups or []) and s.id not in (exclude or set())
    ]
    if not members:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    return min(members, key=lambda s: (s.last_assigned_at or epoch, s.id))


def offer(handoff: Handoff, now: datetime, exclude: set[int] | None = None) -> Staff | None:
    """Offer a waiting conversation to the next on-duty agent of its group (round robin)."""
    agent = pick_agent(handoff.group or SkillGroup.GENERAL.value, exclude)
    if agent is None:
        return None
    handoff.assignee_id = agent.id
    handoff.assigned_at = now
    agent.last_assigned_at = now
    return agent


# --- the user's side --------------------------------------------------------------------------


def waiting_query():  # type: ignore[no-untyped-def]
    """Open conversations nobody has claimed yet, oldest first."""
    return (
        select(Handoff)
        .where(Handoff.status == "open", Handoff.claimed_at.is_(None))
        .order_by(Handoff.created_at, Handoff.id)
    )


def typical_wait_minutes(now: datetime) -> int:
    """How long pickup takes right now: the median of the last day's claims, in minutes."""
    rows = db.session.execute(
        select(Handoff.created_at, Handoff.claimed_at)
        .where(Handoff.claimed_at.is_not(None), Handoff.claimed_at >= now - timedelta(days=1))
        .order_by(Handoff.claimed_at.desc())
        .limit(200)
    ).all()
    if not rows:
        return int(current_app.config["HANDOFF_PICKUP_MINUTES"])
    median = statistics.median((c - s).total_seconds() for s, c in rows)
    return max(1, round(median / 60))


def notice(now: datetime) -> str:
    """What a user is told when handed to a person: queue, usual wait and duty hours."""
    hours = duty()
    if not hours.on(now):
        start = hours.next_start(now).astimezone(hours.tz)
        local_now = now.astimezone(hours.tz)
        if start.date() == local_now.date():
            day = "今天"
        elif start.date() == (local_now + timedelta(days=1)).date():
            day = "明天"
        else:
            day = f"{start.month}月{start.day}日"
        return TEXT["notice_off_duty"].format(
            hours=hours.label(), next_start=f"{day} {start:%H:%M}"
        )
    queue = db.session.scalar(
        select(func.count()).select_from(waiting_query().order_by(None).subquery())
    )
    return TEXT["notice"].format(
        queue=max(0, int(queue or 0) - 1), wait=typical_wait_minutes(now), hours=hours.label()
    )


def opened(openid: str, reason: str, transcript: list[dict[str, str]], now: datetime) -> str:
    """The dialog handed ``openid`` to a person: queue (or reuse) the handoff, return the notice.

    In ``wechat_kf`` mode WeChat's own tool takes the conversation; the same notice then goes
    out as a customer-service message, since the passive reply carries only the transfer.
    """
    handoff = db.session.scalar(
        select(Handoff).where(Handoff.openid == openid, Handoff.status == "open").limit(1)
    )
    if handoff is None:
        devices = devices_for(openid)
        category = devices[0].model.series.category if devices else None
        handoff = Handoff(
            openid=openid,
            reason=reason,
            transcript=transcript,
            created_at=now,
            group=group_for(category, None, role_of(openid)),
        )
        db.session.add(handoff)
        db.session.flush()
        offer(handoff, now)
    text = notice(now)
    if current_app.config["HANDOFF_MODE"] == "wechat_kf":
        from . import outbox

        outbox.enqueue_text(openid, text, purpose="handoff_notice", ref=f"handoff:{handoff.id}")
    return text


def devices_for(openid: str | None) -> list[Device]:
    """What the user's device is: the label they scanned, their request, serials they typed."""
    if not openid:
        return []
    candidates: set[str] = set()
    subscriber = db.session.get(Subscriber, openid)
    scenes = [s for s in (subscriber.last_scene, subscriber.scene) if s] if subscriber else []
    lines = db.session.scalars(
        select(ChatMessage.text)
        .where(ChatMessage.openid == openid, ChatMessage.direction == "in")
        .order_by(ChatMessage.id.desc())
        .limit(200)
    )
    for line in lines:
        candidates.update(t.upper() for t in _SERIAL_TOKEN.findall(line))
    from .tickets.models import RequestForm

    conv = db.session.get(Conversation, openid)
    # The conversation's flag says whether a request form exists: no read of the form table
    # for the many handoffs without one.
    form = db.session.get(RequestForm, openid) if conv is None or conv.form_open else None
    if form is not None and isinstance(form.values.get("serial"), str):
        candidates.add(form.values["serial"].upper())
    found: list[Device] = []
    if conv is not None and conv.device_id is not None:
        current = db.session.get(Device, conv.device_id)
        if current is not None:
            found.append(current)
    if scenes:
        found += db.session.scalars(
            select(Device).where((Device.token.in_(scenes)) | (Device.serial.in_(scenes)))
        )
    if candidates:
        found += db.session.scalars(select(Device).where(Device.serial.in_(sorted(candidates))))
    seen: set[int] = set()
    return [d for d in found if not (d.id in seen or seen.add(d.id))]  # type: ignore[func-returns-value]


# --- the agent's side -------------------------------------------------------------------------


def _conversation(openid: str) -> Conversation:
    conv = db.session.get(Conversation, openid)
    if conv is None:
        conv = Conversation(openid=openid, failures=0)
        db.session.add(conv)
    return conv


def _require_open(handoff: Handoff) -> str:
    if handoff.status != "open":
        raise HandoffError("closed")
    if not handoff.openid:
        raise HandoffError("gone")  # the user unfollowed
    return handoff.openid


def claim(handoff: Handoff, member: Staff, now: datetime) -> None:
    """``member`` takes the conversation: it leaves the queue and the bot stays quiet."""
    openid = _require_open(handoff)
    before = {"assignee": handoff.assignee_id, "claimed": handoff.claimed_at is not None}
    handoff.assignee_id = member.id
    handoff.assigned_at = handoff.assigned_at or now
    handoff.claimed_at = handoff.claimed_at or now
    _conversation(openid).human_since = now
    _audit(member, "handoff.claim", handoff, before, {"assignee": member.id})


def assign(handoff: Handoff, colleague: Staff, member: Staff, now: datetime) -> None:
    """Give the conversation to ``colleague`` (it becomes theirs, claimed)."""
    openid = _require_open(handoff)
    if not colleague.active:
        raise HandoffError("inactive")
    before = {"assignee": handoff.assignee_id}
    handoff.assignee_id = colleague.id
    handoff.assigned_at = now
    handoff.claimed_at = handoff.claimed_at or now
    _conversation(openid).human_since = now
    _audit(member, "handoff.assign", handoff, before, {"assignee": colleague.id})


def reply(handoff: Handoff, member: Staff, text: str, now: datetime) -> ChatMessage:
    """An agent's answer: kept in the transcript and sent through the outbox."""
    from . import outbox

    openid = _require_open(handoff)
    text = (text or "").strip()
    if not text:
        raise HandoffError("empty")
    if len(text) > 2000:
        raise HandoffError("too_long")
    if handoff.claimed_at is None:
        claim(handoff, member, now)
    line = ChatMessage(
        openid=openid, direction="out", text=text, created_at=now, staff_id=member.id
    )
    db.session.add(line)
    db.session.flush()
    handoff.first_response_at = handoff.first_response_at or now
    _conversation(openid).human_since = now
    outbox.enqueue_text(openid, text, purpose="agent_reply", ref=f"chat:{line.id}")
    _audit(member, "handoff.reply", handoff, None, {"message": line.id})
    return line


def hand_back(handoff: Handoff, member: Staff | None, now: datetime, why: str = "agent") -> None:
    """End the human part: the bot answers again and the user is told."""
    from . import outbox

    if handoff.status != "open":
        raise HandoffError("closed")
    _close(handoff, member, now, why)
    if handoff.openid:
        conv = db.session.get(Conversation, handoff.openid)
        if conv is not None:
            conv.human_since = None
        text = TEXT["idle"] if why == "idle" else TEXT["closed"]
        db.session.add(
            ChatMessage(openid=handoff.openid, direction="out", text=text, created_at=now)
        )
        outbox.enqueue_text(
            handoff.openid, text, purpose="handoff_closed", ref=f"handoff:{handoff.id}"
        )


def _close(handoff: Handoff, member: Staff | None, now: datetime, why: str) -> None:
    """Mark an open handoff closed, and why, in the audit log."""
    handoff.status = "closed"
    handoff.closed_at = now
    handoff.closed_reason = why
    _audit(member, "handoff.close", handoff, {"status": "open"}, {"status": "closed", "why": why})


# A user taking back a request for a person: the whole message is one of these.
_WITHDRAW_RE = re.compile(
    r"(取消|不用|不要|不需要|算了|退出|结束)(人工|转人工|人工服务|人工客服)?(了|吧|啦)?"
    r"|(回到?|返回|换回|转回)(机器人|智能客服|自动回复|自助)|cancel"
)


def withdraws(message: str) -> bool:
    """Whether ``message`` takes back the user's request for a person ("取消", "不用人工了")."""
    return bool(_WITHDRAW_RE.fullmatch(re.sub(r"[\W_]+", "", message.lower())))


def withdraw(openid: str, now: datetime) -> bool:
    """Close the user's open handoff that no agent has taken yet; False if an agent has one.

    In ``wechat_kf`` mode WeChat's own tool holds the session, which kefu cannot end.
    """
    if current_app.config["HANDOFF_MODE"] == "wechat_kf":
        return False
    rows = db.session.scalars(
        select(Handoff).where(Handoff.openid == openid, Handoff.status == "open")
    ).all()
    if any(h.claimed_at is not None for h in rows):
        return False
    for handoff in rows:
        _close(handoff, None, now, "withdrawn")
    return True


def idle_window() -> timedelta:
    """How long a user may stay quiet before a person's conversation goes back to the bot."""
    return timedelta(minutes=current_app.config["HANDOFF_IDLE_MINUTES"])


def went_idle(openid: str, now: datetime) -> None:
    """The dialog found a conversation idle past HANDOFF_IDLE_MINUTES: close what an agent owns.

    A conversation nobody has claimed stays in the queue, so an agent can still answer within
    WeChat's 48-hour window; only its bot silence ends.
    """
    from . import outbox

    # WeChat's own tool never tells kefu who claimed what: idle there simply ends the session.
    kf_mode = current_app.config["HANDOFF_MODE"] == "wechat_kf"
    for handoff in db.session.scalars(
        select(Handoff).where(Handoff.openid == openid, Handoff.status == "open")
    ).all():
        if handoff.claimed_at is not None or kf_mode:
            hand_back(handoff, None, now, why="idle")
            continue
        text = TEXT["idle_waiting"]
        db.session.add(ChatMessage(openid=openid, direction="out", text=text, created_at=now))
        outbox.enqueue_text(openid, text, purpose="handoff_idle", ref=f"handoff:{handoff.id}")


def touch_presence(handoff: Handoff, member: Staff, now: datetime) -> list[Staff]:
    """Record that ``member`` is viewing; return the colleagues viewing it too."""
    row = db.session.get(Presence, (handoff.id, member.id))
    if row is None:
        db.session.add(Presence(handoff_id=handoff.id, staff_id=member.id, seen_at=now))
    else:
        row.seen_at = now
    return viewers(handoff.id, now, exclude=member.id)


def viewers(handoff_id: int, now: datetime, exclude: int | None = None) -> list[Staff]:
    """Staff whose page showed this conversation within the last half minute."""
    query = (
        select(Staff)
        .join(Presence, Presence.staff_id == Staff.id)
        .where(Presence.handoff_id == handoff_id, Presence.seen_at >= now - PRESENCE_TTL)
        .order_by(Staff.username)
    )
    if exclude is not None:
        query = query.where(Staff.id != exclude)
    return list(db.session.scalars(query))


def viewers_of(handoff_ids: list[int], now: datetime) -> dict[int, list[str]]:
    """Names of the staff viewing each of these conversations (one query for a whole queue)."""
    if not handoff_ids:
        return {}
    rows = db.session.execute(
        select(Presence.handoff_id, Staff.display_name)
        .join(Staff, Presence.staff_id == Staff.id)
        .where(Presence.handoff_id.in_(handoff_ids), Presence.seen_at >= now - PRESENCE_TTL)
        .order_by(Staff.username)
    )
    found: dict[int, list[str]] = {}
    for handoff_id, name in rows:
        found.setdefault(handoff_id, []).append(name)
    return found


@dataclass(frozen=True)
class Window:
    """WeChat's customer-service window for one user, as the agent sees it."""

    last_user_at: datetime | None
    closes_at: datetime | None
    open: bool
    sent_in_window: int
    sent_today: int
    daily_quota: int


def window(openid: str | None, now: datetime) -> Window:
    """Whether a reply can still reach the user, and how much of the message quota is used."""
    from .outbox import WINDOW, OutboxMessage, last_inbound

    last = last_inbound(openid) if openid else None
    closes = last + WINDOW if last else None
    # WeChat's word beats our clock: a 45015 since the user last wrote means it is closed.
    refused = bool(
        openid
        and last
        and db.session.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.openid == openid,
                OutboxMessage.created_at >= last,
                OutboxMessage.error_code == 45015,
            )
            .limit(1)
        )
    )
    in_window = 0
    if openid and last:
        in_window = (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.openid == openid, OutboxMessage.created_at >= last)
            )
            or 0
        )
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = (
        db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.created_at >= day_start)
        )
        or 0
    )
    return Window(
        last_user_at=last,
        closes_at=closes,
        open=bool(closes and closes > now) and not refused,
        sent_in_window=int(in_window),
        sent_today=int(today),
        daily_quota=int(current_app.config["WECHAT_CS_DAILY_QUOTA"]),
    )


def _audit(
    member: Staff | None,
    action: str,
    handoff: Handoff,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
) -> None:
    from . import audit

    actor = f"staff:{member.username}" if member is not None else "system"
    audit.record(actor, action, "handoff", handoff.id, before=before, after=after)


# --- the sweep: overdue, reassignment, idle ---------------------------------------------------


def sweep(now: datetime) -> dict[str, int]:
    """Flag overdue conversations (telling the user), move stale offers on, end idle sessions,
    route unassigned tickets and move untaken ones on, retry lost photo downloads, and count
    newly settled report days."""
    from . import outbox

    done = {
        "overdue": 0,
        "reassigned": 0,
        "offered": 0,
        "idle": 0,
        "tickets_routed": 0,
        "tickets_reassigned": 0,
        "photos_requeued": 0,
        "report_days": 0,
    }
    reassign_after = timedelta(minutes=current_app.config["HANDOFF_REASSIGN_MINUTES"])
    hours = duty()
    # In wechat_kf mode WeChat's tool holds the queue; kefu cannot see claims there.
    kf_mode = current_app.config["HANDOFF_MODE"] == "wechat_kf"
    waiting = [] if kf_mode else db.session.scalars(waiting_query()).all()
    for handoff in waiting:
        if handoff.overdue_at is None and now >= pickup_deadline(handoff) and handoff.openid:
            handoff.overdue_at = now
            db.session.add(
                ChatMessage(
                    openid=handoff.openid, direction="out", text=TEXT["overdue"], created_at=now
                )
            )
            outbox.enqueue_text(
                handoff.openid,
                TEXT["overdue"],
                purpose="handoff_overdue",
                ref=f"handoff:{handoff.id}",
            )
            _audit(None, "handoff.overdue", handoff, None, {"overdue_at": now.isoformat()})
            done["overdue"] += 1
        if not hours.on(now):
            continue
        if handoff.assignee_id is None:
            if offer(handoff, now) is not None:
                done["offered"] += 1
        elif handoff.assigned_at is not None and now - handoff.assigned_at >= reassign_after:
            previous = handoff.assignee_id
            if offer(handoff, now, exclude={previous}) is not None:
                _audit(
                    None,
                    "handoff.reassign",
                    handoff,
                    {"assignee": previous},
                    {"assignee": handoff.assignee_id},
                )
                done["reassigned"] += 1
    if hours.on(now):
        done["tickets_reassigned"] = reassign_tickets(now)
        done["tickets_routed"] = route_tickets(now)
    done["photos_requeued"] = chat_photos.requeue_lost(now)
    done["report_days"] = reports.roll_up(now)
    idle = idle_window()
    stale = db.session.scalars(
        select(Conversation).where(
            Conversation.human_since.is_not(None), Conversation.human_since <= now - idle
        )
    ).all()
    for conv in stale:
        conv.human_since = None
        went_idle(conv.openid, now)
        done["idle"] += 1
    db.session.execute(delete(Presence).where(Presence.seen_at < now - timedelta(hours=1)))
    return done


def route_tickets(now: datetime, limit: int = 200) -> int:
    """Offer unassigned new or checked tickets to their group's on-duty agents, in turn."""
    from .tickets import Ticket, TicketState

    rows = db.session.scalars(
        select(Ticket)
        .where(
            Ticket.assignee_id.is_(None),
            Ticket.state.in_([TicketState.NEW, TicketState.VALIDATED]),
        )
        .order_by(Ticket.created_at, Ticket.id)
        .limit(limit)
    ).all()
    routed = 0
    for ticket in rows:
        agent = pick_agent(ticket_group(ticket))
        if agent is None:
            continue
        offer_ticket(ticket, agent, "system", now, note="routing")
        routed += 1
    return routed


def ticket_group(ticket: Any) -> str:
    """The skill group of a ticket: its device's category, its level, the customer's role."""
    category = ticket.device.model.series.category if ticket.device else None
    return group_for(category, ticket.level, role_of(ticket.openid))


def offer_ticket(
    ticket: Any, agent: Staff, actor: str, now: datetime, note: str | None = None
) -> None:
    """Give ``ticket`` to ``agent`` to take (接单); unacknowledged, it moves on in the sweep.

    Being offered a ticket is not a response to the customer: the ticket stays new or checked,
    and its first-response clock keeps running until the agent takes it.
    """
    from . import audit

    before = ticket.assignee_id
    ticket.assignee_id = agent.id
    ticket.offered_at = now
    agent.last_assigned_at = now
    audit.record(
        actor,
        "ticket.assign",
        "ticket",
        ticket.number,
        before={"assignee": before},
        after={"assignee": agent.id, "offered": True},
        note=note,
    )


def take_ticket(ticket: Any, member: Staff, now: datetime, notify: bool = True) -> None:
    """``member`` takes the ticket: it is theirs, in progress, and the customer is told.

    Taking a new or checked ticket moves it to "assigned", which is its first response.
    """
    from . import audit
    from .tickets import TicketState, transition

    before = ticket.assignee_id
    acknowledged = ticket.offered_at is not None and before == member.id
    ticket.assignee_id = member.id
    ticket.offered_at = None
    who = f"staff:{member.username}"
    if before != member.id:
        member.last_assigned_at = now
        audit.record(
            who,
            "ticket.assign",
            "ticket",
            ticket.number,
            before={"assignee": before},
            after={"assignee": member.id},
        )
    elif acknowledged:
        audit.record(who, "ticket.take", "ticket", ticket.number, after={"assignee": member.id})
    if ticket.state in (TicketState.NEW, TicketState.VALIDATED):
        transition(ticket, TicketState.ASSIGNED, who, now=now, notify=notify)


def reassign_tickets(now: datetime, limit: int = 200) -> int:
    """Move tickets their agent has not taken within TICKET_REASSIGN_MINUTES to the next one."""
    from . import audit
    from .tickets import OPEN_STATES, Ticket

    after = timedelta(minutes=current_app.config["TICKET_REASSIGN_MINUTES"])
    rows = db.session.scalars(
        select(Ticket)
        .where(
            Ticket.offered_at.is_not(None),
            Ticket.offered_at <= now - after,
            Ticket.state.in_(list(OPEN_STATES)),
        )
        .order_by(Ticket.offered_at, Ticket.id)
        .limit(limit)
    ).all()
    moved = 0
    for ticket in rows:
        previous = ticket.assignee_id
        agent = pick_agent(ticket_group(ticket), exclude={previous} if previous else None)
        if agent is None:
            continue  # nobody else on duty: it stays offered, and is tried again next sweep
        ticket.assignee_id = agent.id
        ticket.offered_at = now
        agent.last_assigned_at = now
        audit.record(
            "system",
            "ticket.reassign",
            "ticket",
            ticket.number,
            before={"assignee": previous},
            after={"assignee": agent.id},
            note=f"{int(after.total_seconds() // 60)} 分钟未接单 / not taken in time",
        )
        moved += 1
    return moved


def sweep_job() -> None:
    """The sweep as a background job (its own transaction)."""
    sweep(datetime.now(UTC))
    db.session.commit()


def maybe_sweep(now: datetime, every: timedelta = timedelta(seconds=20)) -> None:
    """Queue a sweep when none ran lately; the console's polling keeps the clock going."""
    from . import jobs
    from .integrations import redis_client

    client = redis_client()
    if client is not None:
        # One sweep per interval across all workers.
        if not client.set("kefu:handoffs:sweep", "1", nx=True, ex=int(every.total_seconds())):
            return
    else:
        last = current_app.extensions.get("kefu.handoffs.swept")
        if last is not None and now - last < every:
            return
        current_app.extensions["kefu.handoffs.swept"] = now
    jobs.enqueue(sweep_job)


handoffs_cli = AppGroup("handoffs", help="Conversations handed to people: the periodic sweep.")


@handoffs_cli.command("sweep")
def handoffs_sweep() -> None:
    """Flag overdue conversations, reassign stale offers, end idle ones (run from cron)."""
    done = sweep(datetime.now(UTC))
    db.session.commit()
    click.echo(", ".join(f"{k} {v}" for k, v in done.items()))


def init_app(app: Flask) -> None:
    """Register the ``handoffs`` command group."""
    app.cli.add_command(handoffs_cli)
