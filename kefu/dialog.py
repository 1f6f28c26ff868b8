"""The conversation: one message in, one reply out, with state kept in the database.

The webhook and ``flask kb eval`` both call :func:`respond`, so what is measured is what users
get. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import bindparam, case, delete, event, func, select, update
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from . import accounts, chat_context, chat_photos, csat, handoffs, kb
from .catalog import devices
from .catalog.models import Device
from .extensions import db, insert_for, insert_for_dialect
from .models import (
    ChatMessage,
    Conversation,
    Handoff,
    InboundMessage,
    Subscriber,
    UnansweredQuestion,
)
from .nlu import Understanding
from .requests import chat as request_chat
from .requests import forget as forget_requests
from .wechat import Inbound

END_USER = frozenset({"all", "end_user"})
INSTALLER = frozenset({"all", "end_user", "installer"})
TRANSCRIPT_LINES = 20
# WeChat retries within seconds; a day of dedupe records is plenty. Transcripts serve handoffs
# and are personal data, so they are kept a month, not forever.
DEDUPE_KEEP = timedelta(days=1)
TRANSCRIPT_KEEP = timedelta(days=30)
# Two misses in a row and a person takes over.
MAX_FAILURES = 2

# "notice": a fixed reply (media, a scanned code); "silent": no reply, WeChat gets ``success``.
Outcome = Literal[
    "answer",
    "clarify",
    "none",
    "handoff",
    "with_human",
    "greeting",
    "notice",
    "silent",
    "request",  # the repair/warranty request form (kefu.requests.chat) answered
]


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
    # The database is down or slow (or the index still loading): the message is kept and
    # handled when the system is back.
    "busy": "系统繁忙，请稍后再试。您的消息已记录，恢复后会尽快处理。",
    "scan_device": (
        "已识别您扫描的设备：{model}（序列号尾号 {tail}）。请直接描述遇到的问题，"
        "我会按这台设备为您解答；需要人工客服请回复“人工”。"
    ),
    "scan_other": (
        "已收到扫码结果，但它不是{brand}设备标签上的二维码。请扫描设备机身或包装上的标签，"
        "或直接用文字描述您的问题；需要人工客服请回复“人工”。"
    ),
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
    conv = _conversation(openid, now)
    _log(openid, "in", message, now)

    # A digit after a resolved ticket's "rate us 1-5" is the rating (unless a list is open),
    # also while a person still has the conversation.
    thanks = None if conv.pending_choices else csat.answer(openid, message, now)
    if thanks is not None:
        return _say(conv, Reply("notice", thanks, reason="csat"), now)

    if with_human(openid, now):
        if handoffs.withdraws(message) and handoffs.withdraw(openid, now):
            # Nobody had taken it yet and the user no longer wants a person: the bot is back.
            conv.human_since = None
            return _say(conv, Reply("notice", handoffs.TEXT["withdrawn"], reason="withdrawn"), now)
        # A person owns the conversation: keep routing to them, never answer in their place.
        return Reply("with_human")

    # An open request form, a request intent or a ticket query goes to the form first.
    form_reply = request_chat.handle_text(openid, message, now)
    if form_reply is not None:
        conv.pending_choices = None
        return _say(conv, Reply("request", form_reply), now)

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
    # The scanned device, or a serial or model code in the message, narrows the entries.
    products = chat_context.products_for(message, conv.device_id)
    # kefu.nlu.understand bounds what it reads (the phrase lists, then a window for the search).
    result: Understanding = snap.understand(message, INSTALLER, products)
    if result.kind == "handoff":
        return hand_off(conv, result.reason or "requested", now)
    if result.kind != "answer" and chat_context.is_repeat(message, _previous_question(openid)):
        # The same unanswered message twice: the reply did not help, so a person takes over
        # (an answered message costs no lookup of the previous one).
        return hand_off(conv, "repeated_failure", now)
    warranty_text = chat_context.warranty_reply(message, openid)
    if warranty_text is not None:
        # A serial in a warranty question: that device's warranty, as the public lookup says.
        _reset_failures(conv)
        return _say(conv, Reply("answer", warranty_text, reason="warranty"), now)
    if result.kind == "answer":
        entry = snap.entries[result.candidates[0].id]
        if not may_see(entry.audience):
            return _installer_only(conv, now, message, entry.id)
        return _answer(conv, entry, now)
    if result.kind == "clarify":
        ids = tuple(c.id for c in result.candidates if may_see(snap.entries[c.id].audience))
        if not ids:
            return _installer_only(conv, now, message, result.candidates[0].id)
        lines = [text("clarify_head")]
        lines += [f"{i}. {snap.entries[cid].question}" for i, cid in enumerate(ids, start=1)]
        lines.append(text("clarify_tail"))
        conv.pending_choices = list(ids)
        return _say(conv, Reply("clarify", "\n".join(lines), choices=ids), now)
    if result.reason in {"empty", "smalltalk", "greeting"}:
        return _say(conv, Reply("greeting", text("greeting"), reason=result.reason), now)
    best = result.candidates[0].id if result.candidates else None
    return _miss(conv, message, best, now)


def _installer_only(conv: Conversation, now: datetime, message: str, best: str) -> Reply:
    # The KB answers this only for installers: the user is told what they can do and offered
    # a person, and the KB team sees the question like an unanswered one (an end-user entry
    # may be missing).
    db.session.add(UnansweredQuestion(text=message[:500], best_guess=best, created_at=now))
    return _say(conv, Reply("none", text("installer_only"), reason="installer_only"), now)


def _previous_question(openid: str) -> str | None:
    """The user's message before the current one."""
    pending = [
        line["text"]
        for line in db.session.info.get(_LINES, [])
        if line["openid"] == openid and line["direction"] == "in"
    ]
    if len(pending) >= 2:
        return str(pending[-2])
    # The current message is still waiting to be written with the reply: the previous one is
    # the latest line already written, read without writing the waiting lines first (nor
    # flushing anything: a Core statement on the session's connection).
    return (
        db.session.connection()
        .execute(_previous_query(), {"openid": openid, "skip": 1 - len(pending)})
        .scalar()
    )


@cache
def _previous_query() -> Any:
    table = ChatMessage.__table__
    return (
        select(table.c.text)
        .where(table.c.openid == bindparam("openid"), table.c.direction == "in")
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .offset(bindparam("skip"))
        .limit(1)
    )


def _reset_failures(conv: Conversation) -> None:
    # Only a real change dirties the row: most answered messages then need no flush at all.
    if conv.failures:
        conv.failures = 0


def _answer(conv: Conversation, entry: kb.EntryView, now: datetime) -> Reply:
    _reset_failures(conv)
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
    transcript = _transcript(conv.openid, now)
    # Set before the handoff is queued: the conversation's row is then written once, with the
    # rest of the transaction, not once for the queue's statements and again at the commit.
    conv.human_since = now
    conv.failures = 0
    conv.pending_choices = None
    # The console queue (or WeChat's own tool) takes it; the user is told a person is coming,
    # how long that usually takes and when agents are on duty.
    notice_text = handoffs.opened(conv.openid, reason, transcript, now)
    return _say(conv, Reply("handoff", notice_text, reason=reason), now)


def _transcript(openid: str, now: datetime) -> list[dict[str, str]]:
    """The user's last day of lines (at most TRANSCRIPT_LINES), oldest first, for a handoff."""
    session = db.session
    # Every line of this transaction is written first, as an ORM read of the lines would.
    write_transcript(session)
    if any(
        isinstance(obj, ChatMessage) for obj in (*session.new, *session.deleted, *session.dirty)
    ):
        session.flush()
    # Columns only, as a Core statement: no ORM objects for lines that are only copied.
    rows = (
        session.connection()
        .execute(
            _transcript_query(),
            {"openid": openid, "since": now - timedelta(days=1), "limit": TRANSCRIPT_LINES},
        )
        .all()
    )
    return [
        {
            "at": created_at.isoformat(),
            "from": "user" if direction == "in" else "bot",
            "text": line,
        }
        for created_at, direction, line in reversed(rows)
    ]


@cache
def _transcript_query() -> Any:
    table = ChatMessage.__table__
    return (
        select(table.c.created_at, table.c.direction, table.c.text)
        .where(table.c.openid == bindparam("openid"), table.c.created_at >= bindparam("since"))
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(bindparam("limit"))
    )


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
    chat_photos.forget(openid)
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
    # Open request forms go; tickets lose the openid (see kefu.tickets.service.forget).
    forget_requests(openid)
    csat.forget(openid)
    from . import video

    video.forget(openid)


def prune(now: datetime) -> None:
    """Delete dedupe records and transcript lines past their retention period."""
    db.session.execute(delete(InboundMessage).where(InboundMessage.created_at < now - DEDUPE_KEEP))
    chat_photos.prune(now - TRANSCRIPT_KEEP)
    db.session.execute(delete(ChatMessage).where(ChatMessage.created_at < now - TRANSCRIPT_KEEP))


def say(openid: str, reply_text: str, now: datetime | None = None) -> None:
    """Record a bot line that did not come from :func:`respond` (welcome, media replies)."""
    _log(openid, "out", reply_text, now or datetime.now(UTC))


def _say(conv: Conversation, reply: Reply, now: datetime) -> Reply:
    # An FAQ answered in the middle of a request form ends with the way back to the form.
    note = request_chat.pending_note_once(conv.openid)
    if note and reply.text:
        reply = Reply(
            reply.outcome, f"{reply.text}\n\n{note}", reply.entry_id, reply.reason, reply.choices
        )
    _log(conv.openid, "out", reply.text, now)
    return reply


# Transcript lines of the current transaction wait here and are written together, in one
# multi-row INSERT, before the commit or before anything reads or deletes transcript lines.
_LINES = "kefu.transcript_lines"
# Execution option of a transcript read that accounts for the waiting lines itself.
_KEEP_LINES = "kefu_keep_transcript_lines"


def _log(openid: str, direction: str, line: str, now: datetime) -> None:
    db.session.info.setdefault(_LINES, []).append(
        {"openid": openid, "direction": direction, "text": line[:2000], "created_at": now}
    )


def write_transcript(session: Session) -> None:
    """Write the transcript lines buffered in ``session`` (the session's hooks call this)."""
    lines = session.info.pop(_LINES, None)
    if lines:
        # executemany of one compiled statement (sent as one multi-row INSERT)
        session.connection().execute(ChatMessage.__table__.insert(), lines)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_transcript(session)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    write_transcript(session)


@event.listens_for(Session, "do_orm_execute")
def _before_transcript_access(state: ORMExecuteState) -> None:
    # A read of the transcript in the same transaction (a handoff's copy) must see this one's.
    if state.execution_options.get(_KEEP_LINES):
        return
    if state.session.info.get(_LINES) and not state.is_insert:
        if any(m.class_ is ChatMessage for m in state.all_mappers):
            write_transcript(state.session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_LINES, None)


def _conversation(openid: str, now: datetime | None = None) -> Conversation:
    """The user's conversation, created if new: one INSERT ... ON CONFLICT ... RETURNING.

    Two first messages of a new user in parallel both get the row (one creates it, the other
    waits for it), and the row stays locked until the transaction ends, so messages of one user
    update their state one after the other, never over each other. The returned row becomes
    the session's object directly (no ORM query: this runs on every message). While a person
    owns the conversation and it has not gone idle, the same statement keeps that alive
    (``human_since`` becomes now), so a message to an agent costs no second UPDATE.
    """
    now = now or datetime.now(UTC)
    session = db.session
    stmt = _conversation_upsert(session.get_bind().dialect.name)
    params = {"openid": openid, "now": now, "idle_before": now - handoffs.idle_window()}
    # On the session's connection: a Core statement needs none of the ORM's execution steps.
    row = session.connection().execute(stmt, params).one()._mapping
    conv = session.identity_map.get(session.identity_key(Conversation, openid))
    if conv is None:
        conv = Conversation(**row)
        make_transient_to_detached(conv)
        session.add(conv)
    else:
        for key, value in row.items():
            set_committed_value(conv, key, value)
    return conv


@cache
def _conversation_upsert(dialect: str) -> Any:
    table = Conversation.__table__
    stmt = insert_for_dialect(dialect, table).values(
        openid=bindparam("openid"), failures=0, updated_at=bindparam("now")
    )
    human_since = table.c.human_since
    still_with_human = human_since > bindparam("idle_before", type_=human_since.type)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.openid],
        set_={
            "updated_at": stmt.excluded.updated_at,
            "human_since": case((still_with_human, stmt.excluded.updated_at), else_=human_since),
        },
    ).returning(*table.c)


def upsert_subscriber(openid: str, scene: str | None, now: datetime) -> None:
    """Record a follow (with the QR scene it came through): one INSERT ... ON CONFLICT.

    The first scene a user followed through is kept; the latest one is updated on every follow.
    """
    table = Subscriber.__table__
    scene = scene[:64] if scene else None
    stmt = insert_for(table).values(openid=openid, subscribed_at=now, scene=scene, last_scene=scene)
    if scene:
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.openid],
            set_={
                "scene": func.coalesce(table.c.scene, stmt.excluded.scene),
                "last_scene": stmt.excluded.last_scene,
            },
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.openid])
    db.session.execute(stmt)


def with_human(openid: str, now: datetime) -> bool:
    """Whether a person owns the conversation now (and keep their session alive if so)."""
    conv = db.session.get(Conversation, openid)
    if conv is None or conv.human_since is None:
        return False
    if now - conv.human_since >= handoffs.idle_window():
        conv.human_since = None
        handoffs.went_idle(openid, now)
        return False
    if conv.human_since != now:  # else the message's upsert has kept it alive already
        conv.human_since = now
    return True


def menu_click(openid: str, key: str, now: datetime) -> Reply:
    """A custom-menu CLICK; ``WECHAT_MENU_KEYS`` maps keys to ``human``, ``kb:ID``, ``ask:TEXT``."""
    action = current_app.config["WECHAT_MENU_KEYS"].get(key, "")
    conv = _conversation(openid, now)
    _log(openid, "in", f"[菜单] {key}", now)
    if action == "human":
        return hand_off(conv, "menu", now)
    if action == "repair":
        return _say(conv, Reply("request", request_chat.start(openid, now, via="menu")), now)
    if action.startswith("kb:"):
        entry = kb.snapshot().entries.get(action[3:])
        if entry is not None and entry.audience in audiences_for(openid):
            return _answer(conv, entry, now)
    if action.startswith("ask:"):
        return respond(openid, action[4:], now)
    return _say(conv, Reply("greeting", text("greeting")), now)


# ---------------------------------------------------------------------------------------------
# Deliveries from WeChat: messages, media and events. The webhook renders what this returns.

# Following (also by scanning a product code, which WeChat reports as its own event).
FOLLOW_EVENTS = frozenset({"subscribe", "subscribe_scan_product"})
MEDIA_KINDS = frozenset({"image", "location", "link", "video"})
MEDIA_LINES = {"image": "[图片]", "location": "[位置]", "link": "[链接]", "video": "[视频]"}


def handle(inbound: Inbound, now: datetime | None = None) -> Reply:
    """Answer one delivery from WeChat: a text or voice message, a media item or an event."""
    now = now or datetime.now(UTC)
    if inbound.kind == "event":
        return _event(inbound, now)
    if inbound.kind == "text" or (inbound.kind == "voice" and inbound.text.strip()):
        return respond(inbound.openid, inbound.text, now)
    if inbound.kind == "voice":
        return notice(inbound.openid, "voice_unrecognised", now)
    if inbound.kind == "image" and not with_human(inbound.openid, now):
        # A label or proof-of-purchase photo for an open request form, read off the reply path.
        form_reply = request_chat.handle_image(
            inbound.openid, inbound.extra.get("media_id", ""), now
        )
        if form_reply is not None:
            _log(inbound.openid, "in", "[图片]", now)
            return _say(_conversation(inbound.openid, now), Reply("request", form_reply), now)
    if inbound.kind in MEDIA_KINDS:
        if with_human(inbound.openid, now):
            if inbound.kind == "image":
                # The agent sees the photo itself: fetched from WeChat by a background job.
                chat_photos.received(inbound.openid, inbound.extra.get("media_id", ""), now)
                return Reply("with_human")
            # The agent's transcript shows that something arrived (the media stays in WeChat).
            _log(inbound.openid, "in", MEDIA_LINES[inbound.kind], now)
            return Reply("with_human")
        return notice(inbound.openid, inbound.kind, now)
    return notice(inbound.openid, "unsupported", now)


def notice(openid: str, key: str, now: datetime, **values: str | int) -> Reply:
    """A fixed reply (``TEXT[key]``), unless a person owns the conversation (then it is theirs)."""
    if with_human(openid, now):
        return Reply("with_human")
    reply_text = text(key, **values)
    say(openid, reply_text, now)
    return Reply("notice", reply_text, reason=key)


def _event(inbound: Inbound, now: datetime) -> Reply:
    event, openid = inbound.event, inbound.openid
    if event in FOLLOW_EVENTS:
        # Only a parametric QR code's ``qrscene_`` key is a scene (parse sets ``scene``).
        upsert_subscriber(openid, inbound.scene or None, now)
        return _greet(openid, now)
    if event == "scan":
        if inbound.scene:
            db.session.execute(
                update(Subscriber)
                .where(Subscriber.openid == openid)
                .values(last_scene=inbound.scene[:64])
            )
        return _greet(openid, now)
    if event == "unsubscribe":
        forget_user(openid)
        return Reply("silent")
    if event == "click":
        return menu_click(openid, inbound.event_key, now)
    if event == "kf_close_session":
        end_human_session(openid)
        return Reply("silent")
    if event == "scancode_waitmsg":
        # The menu's "scan and wait" button: WeChat shows a spinner until this reply arrives.
        return scanned(openid, inbound.extra.get("scan_result", ""), now)
    # Everything else (VIEW, LOCATION reports, scancode_push, subscription-message and template
    # delivery reports, session events, and whatever WeChat adds) needs no answer.
    return Reply("silent")


def _greet(openid: str, now: datetime) -> Reply:
    welcome = text("greeting")
    say(openid, welcome, now)
    return Reply("greeting", welcome, reason="subscribe")


def scanned(openid: str, result: str, now: datetime) -> Reply:
    """A code scanned from the menu: a kefu device link makes that the user's current device."""
    device = device_for_link(result)
    if device is None:
        _log(openid, "in", "[扫码]", now)
        return notice(openid, "scan_other", now)
    # The link is a capability; the transcript names the model, never the token.
    _log(openid, "in", f"[扫码] {device.model.code}", now)
    set_device(openid, device.id, now)
    form_reply = request_chat.handle_scan(openid, result, now)
    if form_reply is not None:
        return _say(_conversation(openid, now), Reply("request", form_reply), now)
    return notice(openid, "scan_device", now, model=device.model.name, tail=device.serial[-4:])


def device_for_link(url: str) -> Device | None:
    """The device a scanned ``PUBLIC_BASE_URL/d/<token>`` link names, or None for anything else."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    link = urlsplit(url.strip()[:1024])
    if (link.scheme.lower(), link.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return None
    prefix = base.path.rstrip("/") + "/d/"
    if not link.path.startswith(prefix):
        return None
    return devices.by_token(link.path[len(prefix) :].rstrip("/"))


def set_device(openid: str, device_id: int | None, now: datetime | None = None) -> None:
    """Make ``device_id`` the device the user is talking about (None forgets it)."""
    now = now or datetime.now(UTC)
    conv = _conversation(openid, now)
    conv.device_id = device_id
    conv.device_at = now if device_id is not None else None


def current_device(openid: str) -> int | None:
    """The id of the device the user last identified (by scanning its label), if any."""
    # From the session when the message's upsert already loaded the row: no second query.
    conv = db.session.get(Conversation, openid)
    return conv.device_id if conv is not None else None
