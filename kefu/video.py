"""Video guidance: the agent sees the device through the customer's phone camera.

An agent starts a session from a conversation (or a ticket); the customer gets a link in WeChat
through the outbox. The link carries a random token (only its SHA-256 is stored), is good for
``VIDEO_LINK_MINUTES`` and for one browser: the first browser that joins holds the session, any
other is refused. Inside WeChat the visitor's openid (from silent OAuth) must be the
conversation's.

The call itself is peer-to-peer WebRTC. kefu is only the signalling channel, in the simplest
form that works: the agent's browser posts a complete offer (ICE gathering finished, every
candidate in the SDP, no trickle), the customer's page fetches it and posts a complete answer,
the agent's page fetches that. The two SDPs live in Redis when ``REDIS_URL`` is set (any worker
or instance serves them; they expire), else in the session's row. STUN and TURN come from the
settings; TURN credentials follow coturn's TURN REST API (``use-auth-secret``): the username is
``expiry-timestamp:id`` and the password base64(HMAC-SHA1(secret, username)), so coturn checks
them without asking kefu and they stop working by themselves.

Start, end, duration and participants go into the audit log of the conversation and the ticket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import audit, integrations
from .errors import BilingualError
from .extensions import db
from .models import ChatMessage, Handoff, UTCDateTime, utcnow
from .requests import photos
from .tickets.models import Ticket

# Offers and answers are kept this long in Redis: long enough for any call's setup, short enough
# that nothing lingers.
SIGNAL_TTL = timedelta(hours=2)
SDP_MAX = 64 * 1024  # a complete SDP with every candidate is a few KB
TOKEN_BYTES = 24
CHUNK_MAX = 8 * 1024 * 1024  # one MediaRecorder chunk (a few seconds of video)
# Files a phone's camera app produces: MP4/QuickTime (ftyp box) and WebM/Matroska (EBML).
VIDEO_SIGNATURES = (
    (4, b"ftyp", "video/mp4", "mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm", "webm"),
)


class VideoStatus(StrEnum):
    """Where a session is: link sent, customer in, media flowing, over."""

    CREATED = "created"
    JOINED = "joined"
    LIVE = "live"
    ENDED = "ended"


class MediaKind(StrEnum):
    """What a stored file is: the agent's snapshot, the customer's photo or clip, a recording."""

    SNAPSHOT = "snapshot"
    PHOTO = "photo"
    VIDEO = "video"
    RECORDING = "recording"


class VideoError(BilingualError):
    """A refused video action, with the reason in Chinese and English."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(zh, en, detail=code)
        self.code = code


ERRORS = {
    "no_user": ("这个会话没有微信用户，无法发起视频", "This conversation has no WeChat user."),
    "window": (
        "48小时窗口已关闭，微信不允许发送视频链接（45015）；请等用户再次发消息",
        "The 48-hour window is closed; WeChat refuses the link (45015). Wait for the user to "
        "write again.",
    ),
    "expired": (
        "视频链接已过期，请让客服重新发送",
        "This video link has expired; ask for a new one.",
    ),
    "used": (
        "这个视频链接已在另一台设备上使用",
        "This video link has already been used on another device.",
    ),
    "ended": ("视频通话已结束", "The video call has ended."),
    "not_you": (
        "这个视频链接是发给另一位微信用户的",
        "This video link was sent to another WeChat user.",
    ),
    "not_found": ("视频链接无效", "This video link is not valid."),
    "identity": (
        "请在微信里打开链接并允许识别身份，才能加入视频",
        "Open the link in WeChat and allow it to identify you to join the video call.",
    ),
    "sdp": ("连接信息无效", "The connection data is not valid."),
    "stale": ("客服更新了连接信息，正在重新连接", "The agent renewed the call; reconnecting."),
    "consent": (
        "本次通话会录像，需要您同意后才能加入",
        "This call is recorded; agree to join.",
    ),
    "not_video": (
        "这不是可以播放的视频，请上传 MP4 或 WebM 短视频",
        "That is not a playable video; upload an MP4 or WebM clip.",
    ),
    "too_large": ("文件太大", "The file is too large."),
    "empty": ("没有收到文件，请重新选择", "No file arrived; choose it again."),
    "not_live": ("通话未在进行，不能录像", "The call is not live; nothing to record."),
}


def error(code: str) -> VideoError:
    """The VideoError for ``code``."""
    zh, en = ERRORS[code]
    return VideoError(code, zh, en)


class VideoSession(db.Model):  # type: ignore[name-defined]
    """One video call between an agent and a customer, tied to a conversation or ticket."""

    __tablename__ = "video_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the link's token: a database dump does not give anyone a working link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    handoff_id: Mapped[int | None] = mapped_column(
        ForeignKey("handoffs.id", ondelete="SET NULL"), index=True
    )
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    # Cleared when the user unfollows.
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=VideoStatus.CREATED)
    # Whether this call is recorded (VIDEO_RECORDING when it was created), and when the
    # customer agreed to that.
    recording: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The outbox row that carried the link (its delivery is shown to the agent).
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    # SHA-256 of the key of the one browser that joined: the link is single-use.
    join_key_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # Signalling without Redis.
    offer_sdp: Mapped[str | None] = mapped_column(Text)
    answer_sdp: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket | None] = relationship(Ticket)
    media: Mapped[list[VideoMedia]] = relationship(
        back_populates="session", order_by="VideoMedia.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        db.CheckConstraint("status IN ('created', 'joined', 'live', 'ended')", name="status"),
    )

    def expired(self, now: datetime) -> bool:
        """Whether the link can no longer be used to join."""
        return self.status == VideoStatus.CREATED and now >= self.expires_at

    @property
    def duration(self) -> int:
        """Seconds the media flowed (0 when it never connected)."""
        if not self.connected_at:
            return 0
        end = self.ended_at or datetime.now(UTC)
        return max(0, int((end - self.connected_at).total_seconds()))


class VideoMedia(db.Model):  # type: ignore[name-defined]
    """A file from a video session: snapshot, customer photo or clip, or a recording chunk."""

    __tablename__ = "video_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("video_sessions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int | None] = mapped_column(Integer)  # recording chunks, in order
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[VideoSession] = relationship(back_populates="media")

    __table_args__ = (
        db.CheckConstraint("kind IN ('snapshot', 'photo', 'video', 'recording')", name="kind"),
    )

    @property
    def is_image(self) -> bool:
        """Whether the file is a JPEG photo."""
        return self.content_type == "image/jpeg"


@dataclass(frozen=True)
class Created:
    """A new session and the link to send (the token exists only here)."""

    session: VideoSession
    token: str
    url: str


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def link_minutes() -> int:
    """How long a link can be used to join (``VIDEO_LINK_MINUTES``)."""
    return int(current_app.config.get("VIDEO_LINK_MINUTES", 10))


def recording_on() -> bool:
    """Whether new calls are recorded (``VIDEO_RECORDING``)."""
    return bool(current_app.config.get("VIDEO_RECORDING", False))


def create(
    actor: str,
    staff_id: int | None,
    now: datetime,
    *,
    handoff: Handoff | None = None,
    ticket: Ticket | None = None,
) -> Created:
    """Start a session for a conversation and/or ticket; the caller sends the link and commits."""
    openid = (handoff.openid if handoff else None) or (ticket.openid if ticket else None)
    if not openid:
        raise error("no_user")
    if handoff is None:
        # A call from a ticket still belongs in the customer's conversation, when there is one.
        handoff = db.session.scalar(
            select(Handoff).where(Handoff.openid == openid).order_by(Handoff.id.desc()).limit(1)
        )
    if ticket is None and handoff is not None:
        from . import tickets

        ticket = next((t for t in tickets.for_openid(openid, limit=5) if t.is_open), None)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session = VideoSession(
        token_hash=_hash(token),
        handoff_id=handoff.id if handoff else None,
        ticket_id=ticket.id if ticket else None,
        openid=openid,
        staff_id=staff_id,
        status=VideoStatus.CREATED,
        recording=recording_on(),
        created_at=now,
        expires_at=now + timedelta(minutes=link_minutes()),
    )
    db.session.add(session)
    db.session.flush()
    _audit(session, actor, "video.create", after={"session": session.id, "by": actor})
    url = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + f"/v/{token}"
    return Created(session, token, url)


def link_text(url: str) -> str:
    """The customer-service message that carries the link."""
    minutes = link_minutes()
    return (
        f"客服邀请您进行视频指导：点开链接，用手机后置摄像头对准设备，客服就能看到问题所在。"
        f"链接 {minutes} 分钟内有效，仅限本人使用。\n{url}\n"
        f"Video guidance: open the link and point your phone's camera at the device "
        f"(valid for {minutes} minutes, for you only)."
    )


def by_token(token: str) -> VideoSession | None:
    """The session a link's token opens, if any."""
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(VideoSession).where(VideoSession.token_hash == _hash(token)))


def check_visitor(session: VideoSession, now: datetime, openid: str | None) -> None:
    """Refuse a visitor who may not open the link (expired, over, another WeChat user)."""
    if session.status == VideoStatus.ENDED:
        raise error("ended")
    if session.expired(now):
        raise error("expired")
    if openid is not None and openid != session.openid:
        raise error("not_you")


def join(
    session: VideoSession, join_key: str, now: datetime, openid: str | None, consent: bool
) -> None:
    """Let one browser (identified by ``join_key``) into the call; the link is then used up."""
    key_hash = _hash(join_key)
    mine = session.join_key_hash is not None and hmac.compare_digest(
        session.join_key_hash, key_hash
    )
    if mine and session.status in (VideoStatus.JOINED, VideoStatus.LIVE):
        return  # the same browser again (a reload): still its call
    if session.status == VideoStatus.ENDED:
        raise error("ended")
    if session.join_key_hash is not None and not mine:
        raise error("used")
    check_visitor(session, now, openid)
    if session.recording and not consent:
        raise error("consent")
    # One conditional UPDATE: two browsers opening the link at once cannot both win.
    won = db.session.execute(
        update(VideoSession)
        .where(
            VideoSession.id == session.id,
            (VideoSession.join_key_hash.is_(None)) | (VideoSession.join_key_hash == key_hash),
            VideoSession.status == VideoStatus.CREATED,
            VideoSession.expires_at > now,
        )
        .values(
            join_key_hash=key_hash,
            status=VideoStatus.JOINED,
            joined_at=now,
            consent_at=now if session.recording else None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(session)
    if not won:
        raise error("used")
    _audit(
        session,
        "customer",
        "video.join",
        after={"session": session.id, "recording_consent": session.recording},
    )


def claim(session: VideoSession, join_key: str, now: datetime, openid: str | None) -> None:
    """Hold the link for this browser without joining (a page that can only send files)."""
    check_visitor(session, now, openid)
    won = db.session.execute(
        update(VideoSession)
        .where(
            VideoSession.id == session.id,
            VideoSession.join_key_hash.is_(None),
            VideoSession.expires_at > now,
        )
        .values(join_key_hash=_hash(join_key))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(session)
    if not won:
        raise error("used")


def holds(session: VideoSession, join_key: str | None) -> bool:
    """Whether ``join_key`` is the browser that joined this session."""
    return bool(
        join_key
        and session.join_key_hash
        and hmac.compare_digest(session.join_key_hash, _hash(join_key))
    )


def mark_live(session: VideoSession, actor: str, now: datetime) -> bool:
    """Media is flowing: record the start once (either side may report it first)."""
    won = db.session.execute(
        update(VideoSession)
        .where(VideoSession.id == session.id, VideoSession.status == VideoStatus.JOINED)
        .values(status=VideoStatus.LIVE, connected_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(session)
    if won:
        _audit(
            session,
            actor,
            "video.start",
            after={"session": session.id, "participants": participants(session)},
        )
    return bool(won)


def end(session: VideoSession, actor: str, reason: str, now: datetime) -> bool:
    """Hang up: record end, duration and participants once; the signalling data is dropped."""
    won = db.session.execute(
        update(VideoSession)
        .where(VideoSession.id == session.id, VideoSession.status != VideoStatus.ENDED)
        .values(
            status=VideoStatus.ENDED,
            ended_at=now,
            end_reason=reason[:32],
            offer_sdp=None,
            answer_sdp=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(session)
    if won:
        _drop_signals(session.id)
        _audit(
            session,
            actor,
            "video.end",
            after={
                "session": session.id,
                "reason": session.end_reason,
                "duration_s": session.duration,
                "connected": session.connected_at is not None,
                "participants": participants(session),
            },
        )
    return bool(won)


def participants(session: VideoSession) -> list[str]:
    """Who took part: the agent (audit name) and, once joined, the customer."""
    from .staff import Staff

    people = []
    member = db.session.get(Staff, session.staff_id) if session.staff_id else None
    if member is not None:
        people.append(f"staff:{member.username}")
    if session.joined_at is not None:
        people.append("customer")
    return people


def _audit(session: VideoSession, actor: str, action: str, **values: Any) -> None:
    if session.handoff_id is not None:
        audit.record(actor, action, "handoff", str(session.handoff_id), **values)
    if session.ticket_id is not None:
        number = db.session.scalar(select(Ticket.number).where(Ticket.id == session.ticket_id))
        if number:
            audit.record(actor, action, "ticket", number, **values)


# --- ICE servers -----------------------------------------------------------------------------


def _urls(name: str) -> list[str]:
    raw = current_app.config.get(name) or ""
    if isinstance(raw, list | tuple):
        return [str(u).strip() for u in raw if str(u).strip()]
    return [u.strip() for u in str(raw).split(",") if u.strip()]


def turn_credentials(secret: str, ident: str, now: datetime, ttl: int) -> tuple[str, str]:
    """coturn's TURN REST API credentials: (expiry:id, base64(HMAC-SHA1(secret, username)))."""
    username = f"{int(now.timestamp()) + ttl}:{ident}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(ident: str, now: datetime) -> list[dict[str, Any]]:
    """RTCPeerConnection's iceServers: STUN, and TURN with time-limited credentials."""
    servers: list[dict[str, Any]] = []
    stun = _urls("VIDEO_STUN_URLS")
    if stun:
        servers.append({"urls": stun})
    turn = _urls("VIDEO_TURN_URLS")
    secret = str(current_app.config.get("VIDEO_TURN_SECRET") or "")
    if turn and secret:
        ttl = int(current_app.config.get("VIDEO_TURN_TTL", 7200))
        username, credential = turn_credentials(secret, ident, now, ttl)
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers


# --- Signalling ------------------------------------------------------------------------------


def _key(session_id: int, kind: str) -> str:
    return f"kefu:video:{session_id}:{kind}"


def check_sdp(sdp: object, kind: str) -> str:
    """A complete SDP of ``kind`` ("offer" or "answer"), or VideoError("sdp")."""
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > SDP_MAX:
        raise error("sdp")
    if "m=" not in sdp or "a=fingerprint:" not in sdp:
        raise error("sdp")
    return sdp


def put_signal(session: VideoSession, kind: str, sdp: str) -> None:
    """Store the offer or answer where every worker can read it (Redis, else the row)."""
    client = integrations.redis_client()
    if client is not None:
        client.set(_key(session.id, kind), sdp.encode(), ex=int(SIGNAL_TTL.total_seconds()))
        if kind == "offer":
            # A new offer (the agent's page reloaded) makes the old answer meaningless.
            client.delete(_key(session.id, "answer"))
        return
    if kind == "offer":
        session.offer_sdp, session.answer_sdp = sdp, None
    else:
        session.answer_sdp = sdp


def get_signal(session: VideoSession, kind: str) -> str | None:
    """The stored offer or answer, or None when it has not arrived."""
    client = integrations.redis_client()
    if client is not None:
        raw = client.get(_key(session.id, kind))
        return raw.decode() if isinstance(raw, bytes) else raw
    return session.offer_sdp if kind == "offer" else session.answer_sdp


def offer_version(sdp: str | None) -> str | None:
    """A short name for one offer: an answer must name the offer it answers."""
    return hashlib.sha256(sdp.encode()).hexdigest()[:16] if sdp else None


def put_answer(session: VideoSession, sdp: str, version: object) -> None:
    """Store the customer's answer if it answers the current offer, else VideoError("stale").

    The agent may replace the offer (turning their own camera on) while the customer's page is
    answering the previous one; an answer to an old offer cannot set up this call.
    """
    if version != offer_version(get_signal(session, "offer")):
        raise error("stale")
    put_signal(session, "answer", sdp)


def _drop_signals(session_id: int) -> None:
    client = integrations.redis_client()
    if client is not None:
        client.delete(_key(session_id, "offer"), _key(session_id, "answer"))


# --- Files -----------------------------------------------------------------------------------


def upload_max() -> int:
    """Largest customer clip accepted (``VIDEO_UPLOAD_MAX_BYTES``)."""
    return int(current_app.config.get("VIDEO_UPLOAD_MAX_BYTES", 50 * 1024 * 1024))


def _store_bytes(folder: str, data: bytes, ext: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = photos.root() / folder / digest[:2] / f"{digest}.{ext}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return digest


def media_path(item: VideoMedia) -> Path:
    """Where a stored file lives (under ``PROOF_ROOT``: staff-only, never public)."""
    if item.content_type == "image/jpeg":
        return photos.path_for(item.sha256)
    ext = "mp4" if item.content_type == "video/mp4" else "webm"
    folder = "recordings" if item.kind == MediaKind.RECORDING else "video"
    return photos.root() / folder / item.sha256[:2] / f"{item.sha256}.{ext}"


def add_photo(session: VideoSession, kind: MediaKind, data: bytes, actor: str) -> VideoMedia:
    """Keep a snapshot or customer photo the way proof photos are kept (cleaned, no EXIF)."""
    stored = photos.store(data)  # raises photos.PhotoError with the reason
    item = VideoMedia(
        session_id=session.id,
        kind=kind,
        sha256=stored.sha256,
        content_type="image/jpeg",
        size=stored.size,
        actor=actor,
        created_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    action = "video.snapshot" if kind == MediaKind.SNAPSHOT else "video.customer_photo"
    _audit(session, actor, action, after={"session": session.id, "media": item.id})
    if kind == MediaKind.PHOTO:
        _transcript_line(session, f"[视频指导] 用户上传了一张照片（#{item.id}）")
    return item


def add_clip(session: VideoSession, data: bytes, actor: str) -> VideoMedia:
    """Keep the customer's short video (MP4 or WebM, checked by its first bytes)."""
    if not data:
        raise error("empty")
    if len(data) > upload_max():
        raise error("too_large")
    found = next(
        (
            (ctype, ext)
            for off, magic, ctype, ext in VIDEO_SIGNATURES
            if data[off:].startswith(magic)
        ),
        None,
    )
    if found is None:
        raise error("not_video")
    content_type, ext = found
    digest = _store_bytes("video", data, ext)
    item = VideoMedia(
        session_id=session.id,
        kind=MediaKind.VIDEO,
        sha256=digest,
        content_type=content_type,
        size=len(data),
        actor=actor,
        created_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    _audit(session, actor, "video.customer_clip", after={"session": session.id, "media": item.id})
    _transcript_line(session, f"[视频指导] 用户上传了一段视频（#{item.id}）")
    return item


def add_recording_chunk(session: VideoSession, seq: int, data: bytes, actor: str) -> VideoMedia:
    """Keep one chunk of the agent browser's recording (WebM, in order by ``seq``)."""
    if not session.recording or session.consent_at is None:
        raise error("consent")
    if session.status not in (VideoStatus.LIVE, VideoStatus.ENDED):
        raise error("not_live")
    if not data:
        raise error("empty")
    if len(data) > CHUNK_MAX:
        raise error("too_large")
    existing = db.session.scalar(
        select(VideoMedia).where(
            VideoMedia.session_id == session.id,
            VideoMedia.kind == MediaKind.RECORDING,
            VideoMedia.seq == seq,
        )
    )
    if existing is not None:
        return existing  # a retried upload of the same chunk
    digest = _store_bytes("recordings", data, "webm")
    item = VideoMedia(
        session_id=session.id,
        kind=MediaKind.RECORDING,
        sha256=digest,
        content_type="video/webm",
        size=len(data),
        seq=seq,
        actor=actor,
        created_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    return item


def recording_chunks(session: VideoSession) -> list[VideoMedia]:
    """The recording's chunks in order (concatenated they are one WebM file)."""
    return sorted(
        (m for m in session.media if m.kind == MediaKind.RECORDING), key=lambda m: m.seq or 0
    )


def _transcript_line(session: VideoSession, text: str) -> None:
    # "web": the customer sent it from the web page, not through WeChat, so it does not reopen
    # WeChat's 48-hour window (which counts "in" lines only).
    if session.openid:
        db.session.add(
            ChatMessage(openid=session.openid, direction="web", text=text, created_at=utcnow())
        )


def for_handoff(handoff_id: int) -> list[VideoSession]:
    """The conversation's video sessions, newest first."""
    return list(
        db.session.scalars(
            select(VideoSession)
            .where(VideoSession.handoff_id == handoff_id)
            .order_by(VideoSession.id.desc())
            .limit(20)
        )
    )


def for_ticket(ticket_id: int) -> list[VideoSession]:
    """The ticket's video sessions, newest first."""
    return list(
        db.session.scalars(
            select(VideoSession)
            .where(VideoSession.ticket_id == ticket_id)
            .order_by(VideoSession.id.desc())
            .limit(20)
        )
    )


def forget(openid: str) -> None:
    """The user unfollowed: their sessions lose the openid and any unfinished one ends."""
    now = datetime.now(UTC)
    db.session.execute(
        update(VideoSession)
        .where(VideoSession.openid == openid, VideoSession.status != VideoStatus.ENDED)
        .values(status=VideoStatus.ENDED, ended_at=now, end_reason="unfollowed")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(VideoSession)
        .where(VideoSession.openid == openid)
        .values(openid=None, offer_sdp=None, answer_sdp=None)
        .execution_options(synchronize_session=False)
    )
