"""The conversation: one message in, one reply out, with state kept in the database.

The webhook and ``flask kb eval`` both call :func:`respond`, so what is measured is what users
get. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from flask import current_app
from sqlalchemy import delete, select, update

from . import accounts, kb
from .extensions import db
from .models import (
    ChatMessage,
    Conversation,
    Handoff,
    InboundMessage,
    Subscriber,
    UnansweredQuestion,
)
from .nlu import Understanding, understand

END_USER = frozenset({"all", "end_user"})
INSTALLER = frozenset({"all", "end_user", "installer"})
TRANSCRIPT_LINES = 20
# WeChat retries within seconds; a day of dedupe records is plenty. Transcripts serve handoffs
# and are personal data, so they are kept a month, not forever.
DEDUPE_KEEP = timedelta(days=1)
TRANSCRIPT_KEEP = timedelta(days=30)
# Two misses in a row and a person takes over (issue: "fails to get an answer twice").
MAX_FAILURES = 2

Outcome = Literal["answer", "clarify", "none", "handoff", "with_human", "greeting"]


@dataclass(frozen=True)
class Reply:
    """What the bot decided: the outcome, the text to send (if any) and why."""

    outcome: Outcome
    text: str = ""
    entry_id: str | None = None
    reason: str | None = None
    choices: tuple[str, ...] = ()


TEXT = {
    "clarify_head": "您想问的是下面哪一个？请回复数字：",
    "clarify_tail": "都不是请回复 0，转人工请回复“人工”。",
    "choice_range": "请回复 1 到 {n} 之间的数字，都不是请回复 0。",
    "dont_know": (
        "抱歉，这个问题我暂时回答不了。您可以换个说法再问一次，或回复“人工”由客服为您处理。"
    ),
    "greeting": (
        "您好，我是{brand}智能客服。摄像头、录像机、门铃、智能门锁和安视云 App 的使用、"
        "故障、保修问题都可以直接问我，比如“摄像头离线怎么办”。需要人工客服请回复“人工”。"
    ),
    "installer_only": (
        "这个问题涉及专业安装和调试，建议联系为您安装设备的师傅或经销商处理；"
        "需要客服协助请回复“人工”。"
    ),
    "voice_unrecognised": "抱歉，没听清这条语音，请用文字描述您的问题。",
    "image": (
        "已收到图片。我暂时看不懂图片内容，请用文字简单描述遇到的问题"
        "（例如“设备离线”“画面倒了”）；需要人工客服请回复“人工”。"
    ),
    "location": (
        "已收到您的位置。如需查询附近的售后网点或上门服务，请回复“人工”，客服会为您安排。"
    ),
    "link": "已收到链接。请用文字描述您想咨询的问题，我会尽快为您解答。",
    "video": "已收到视频。请用文字描述您遇到的问题，需要人工客服请回复“人工”。",
    "unsupported": "暂时只能处理文字消息，请用文字描述您的问题。",
}


def text(key: str, **values: str | int) -> str:
    """A bot phrase, filled in."""
    brand = current_app.config.get("BRAND_NAME", "")
    return TEXT[key].format(brand=brand, **values)


_CHOICE_RE = re.compile(r"^\s*第?\s*([0-9０-９一二三四五])\s*(?:个|条|项)?\s*[.。、)）]?\s*$")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}


def parse_choice(message: str) -> int | None:
    """A reply to a numbered list: "2", "２", "第二个"; None when it is not a choice."""
    match = _CHOICE_RE.match(message)
    if not match:
        return None
    raw = match.group(1)
    if raw in _CN_DIGITS:
        return _CN_DIGITS[raw]
    return int(raw.translate(str.maketrans("０１２３４５６７８９", "0123456789")))


def audiences_for(openid: str) -> frozenset[str]:
    """Which KB audiences this user may see; installers are recognised by their account."""
    return INSTALLER if accounts.approved_by_openid(openid) is not None else END_USER


def respond(
    openid: str,
    message: str,
    now: datetime | None = None,
    audiences: frozenset[str] | None = None,
) -> Reply:
    """Answer one text message from ``openid`` and update their conversation state.

    ``audiences`` overrides who the user is taken to be (the evaluation runs as an installer).
    """
    now = now or datetime.now(UTC)
    conv = _conversation(openid)
    _log(openid, "in", message, now)

    if with_human(openid, now):
        # A person owns the conversation: keep routing to them, never answer in their place.
        return Reply("with_human")

    snap = kb.snapshot()
    if conv.pending_choices:
        choices = list(conv.pending_choices)
        choice = parse_choice(message)
        if choice is not None:
            if choice == 0:
                # "None of these": the question that was asked goes to the KB team, not "0".
                conv.pending_choices = None
                return _miss(conv, _previous_question(openid) or message, choices[0], now)
            if 1 <= choice <= len(choices) and choices[choice - 1] in snap.entries:
                conv.pending_choices = None
                return _answer(conv, snap.entries[choices[choice - 1]], now)
            return _say(conv, Reply("clarify", text("choice_range", n=len(choices))), now)
        conv.pending_choices = None

    def may_see(audience: str) -> bool:
        if audiences is not None:
            return audience in audiences
        # Every user sees entries for end users; only the rest need the account looked up.
        return audience in END_USER or audience in audiences_for(openid)

    # Search the whole KB, then filter: when the best match is for installers only, an end user
    # is told so rather than handed the next-best entry, which would be a wrong answer.
    result: Understanding = understand(message, snap.index, INSTALLER)
    if result.kind == "handoff":
        return hand_off(conv, result.reason or "requested", now)
    if result.kind == "answer":
        entry = snap.entries[result.candidates[0].id]
        if not may_see(entry.audience):
            return _installer_only(conv, now)
        return _answer(conv, entry, now)
    if result.kind == "clarify":
        ids = tuple(c.id for c in result.candidates if may_see(snap.entries[c.id].audience))
        if not ids:
            return _installer_only(conv, now)
        lines = [text("clarify_head")]
        lines += [f"{i}. {snap.entries[cid].question}" for i, cid in enumerate(ids, start=1)]
        lines.append(text("clarify_tail"))
        conv.pending_choices = list(ids)
        return _say(conv, Reply("clarify", "\n".join(lines), choices=ids), now)
    if result.reason in {"empty", "smalltalk", "greeting"}:
        return _say(conv, Reply("greeting", text("greeting"), reason=result.reason), now)
    best = result.candidates[0].id if result.candidates else None
    return _miss(conv, message, best, now)


def _installer_only(conv: Conversation, now: datetime) -> Reply:
    # Not a miss: the KB has the answer, for the user's installer.
    return _say(conv, Reply("none", text("installer_only"), reason="installer_only"), now)


def _previous_question(openid: str) -> str | None:
    """The user's message before the current one."""
    return db.session.scalar(
        select(ChatMessage.text)
        .where(ChatMessage.openid == openid, ChatMessage.direction == "in")
        .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
        .offset(1)
        .limit(1)
    )


def _answer(conv: Conversation, entry: kb.EntryView, now: datetime) -> Reply:
    conv.failures = 0
    # The entry's answer goes out exactly as written in the knowledge base.
    return _say(conv, Reply("answer", entry.answer, entry_id=entry.id), now)


def _miss(conv: Conversation, message: str, best: str | None, now: datetime) -> Reply:
    db.session.add(UnansweredQuestion(text=message[:500], best_guess=best, created_at=now))
    conv.failures += 1
    if conv.failures >= MAX_FAILURES:
        return hand_off(conv, "repeated_failure", now)
    return _say(conv, Reply("none", text("dont_know"), reason="low_confidence"), now)


def hand_off(conv: Conversation, reason: str, now: datetime) -> Reply:
    """Give the conversation to a person: store why and what was said, and stay quiet after."""
    lines = db.session.scalars(
        select(ChatMessage)
        .where(ChatMessage.openid == conv.openid, ChatMessage.created_at >= now - timedelta(days=1))
        .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
        .limit(TRANSCRIPT_LINES)
    ).all()
    transcript = [
        {
            "at": m.created_at.isoformat(),
            "from": "user" if m.direction == "in" else "bot",
            "text": m.text,
        }
        for m in reversed(lines)
    ]
    db.session.add(
        Handoff(openid=conv.openid, reason=reason, transcript=transcript, created_at=now)
    )
    conv.human_since = now
    conv.failures = 0
    conv.pending_choices = None
    return Reply("handoff", reason=reason)


def end_human_session(openid: str) -> None:
    """The agent closed the session (``kf_close_session``): the bot answers again."""
    conv = db.session.get(Conversation, openid)
    if conv is not None:
        conv.human_since = None
    db.session.execute(
        update(Handoff)
        .where(Handoff.openid == openid, Handoff.status == "open")
        .values(status="closed", closed_at=datetime.now(UTC))
    )


def forget_user(openid: str) -> None:
    """Remove a user's personal data (they unfollowed): state, transcript, openid on records."""
    db.session.execute(delete(ChatMessage).where(ChatMessage.openid == openid))
    db.session.execute(delete(Conversation).where(Conversation.openid == openid))
    db.session.execute(delete(Subscriber).where(Subscriber.openid == openid))
    db.session.execute(
        update(Handoff)
        .where(Handoff.openid == openid)
        .values(openid=None, transcript=[], status="closed", closed_at=datetime.now(UTC))
    )
    # Delivery records of events carry the openid in their dedupe key: drop the finished ones.
    # The delivery being handled (its reply not yet stored) stays, without the openid, so a
    # retry of this very event is still recognised; it is pruned with the rest after a day.
    db.session.execute(
        delete(InboundMessage).where(
            InboundMessage.openid == openid, InboundMessage.reply.is_not(None)
        )
    )
    db.session.execute(
        update(InboundMessage).where(InboundMessage.openid == openid).values(openid=None)
    )
    accounts.forget_openid(openid)


def prune(now: datetime) -> None:
    """Delete dedupe records and transcript lines past their retention period."""
    db.session.execute(delete(InboundMessage).where(InboundMessage.created_at < now - DEDUPE_KEEP))
    db.session.execute(delete(ChatMessage).where(ChatMessage.created_at < now - TRANSCRIPT_KEEP))


def say(openid: str, reply_text: str, now: datetime | None = None) -> None:
    """Record a bot line that did not come from :func:`respond` (welcome, media replies)."""
    _log(openid, "out", reply_text, now or datetime.now(UTC))


def _say(conv: Conversation, reply: Reply, now: datetime) -> Reply:
    _log(conv.openid, "out", reply.text, now)
    return reply


def _log(openid: str, direction: str, line: str, now: datetime) -> None:
    db.session.add(
        ChatMessage(openid=openid, direction=direction, text=line[:2000], created_at=now)
    )


def _conversation(openid: str) -> Conversation:
    conv = db.session.get(Conversation, openid)
    if conv is None:
        conv = Conversation(openid=openid, failures=0)
        db.session.add(conv)
    return conv


def with_human(openid: str, now: datetime) -> bool:
    """Whether a person owns the conversation now (and keep their session alive if so)."""
    conv = db.session.get(Conversation, openid)
    if conv is None or conv.human_since is None:
        return False
    idle = timedelta(minutes=current_app.config["HANDOFF_IDLE_MINUTES"])
    if now - conv.human_since >= idle:
        conv.human_since = None
        return False
    conv.human_since = now
    return True


def menu_click(openid: str, key: str, now: datetime) -> Reply:
    """A custom-menu CLICK; ``WECHAT_MENU_KEYS`` maps keys to ``human``, ``kb:ID``, ``ask:TEXT``."""
    action = current_app.config["WECHAT_MENU_KEYS"].get(key, "")
    conv = _conversation(openid)
    _log(openid, "in", f"[菜单] {key}", now)
    if action == "human":
        return hand_off(conv, "menu", now)
    if action.startswith("kb:"):
        entry = kb.snapshot().entries.get(action[3:])
        if entry is not None and entry.audience in audiences_for(openid):
            return _answer(conv, entry, now)
    if action.startswith("ask:"):
        return respond(openid, action[4:], now)
    return _say(conv, Reply("greeting", text("greeting")), now)
