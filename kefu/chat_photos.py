"""Photos a user sends while an agent owns (or is about to own) the conversation.

The transcript line "[图片]" is written at once; the photo itself is fetched from WeChat's
temporary-media API by a background job (never on the 5-second reply path), checked and
cleaned like a proof-of-purchase photo (Pillow verification, size and pixel caps, re-encoded
without EXIF), and kept under its SHA-256 in ``CHAT_PHOTO_ROOT``, outside the web root. Only
the staff console serves it. The files go when the user unfollows or the transcript line is
pruned. Nothing here commits except the job.
"""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from flask import current_app
from PIL import Image
from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db
from .models import ChatMessage, UTCDateTime, utcnow

log = logging.getLogger(__name__)

LINE_TEXT = "[图片]"
THUMB_SIDE = 320
MAX_ATTEMPTS = 5
# WeChat keeps temporary media for three days; after that a download can only fail.
MEDIA_LIFETIME = timedelta(days=3)
# A job lost with the queue (Redis restarted) is queued again by the sweep after this long.
RETRY_AFTER = timedelta(minutes=10)


class PhotoStatus(StrEnum):
    """Where a photo is in its fetch."""

    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"  # not an image, too large, or WeChat no longer has it


class ChatPhoto(db.Model):  # type: ignore[name-defined]
    """A photo behind a user's "[图片]" transcript line."""

    __tablename__ = "chat_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("chat_messages.id", ondelete="CASCADE"), unique=True
    )
    openid: Mapped[str] = mapped_column(String(64), index=True)
    media_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=PhotoStatus.PENDING, index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # Why it could not be kept, for the agent: "not_image", "too_large", "40007 ...".
    error: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        db.CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in PhotoStatus) + ")", name="status"
        ),
    )


def root() -> Path:
    """Where chat photos are kept (``CHAT_PHOTO_ROOT``), never under MEDIA_ROOT."""
    folder = Path(
        current_app.config.get("CHAT_PHOTO_ROOT") or Path(current_app.instance_path) / "chat-photos"
    ).resolve()
    media = Path(current_app.config["MEDIA_ROOT"]).resolve()
    if folder == media or media in folder.parents:
        raise RuntimeError("CHAT_PHOTO_ROOT must not be inside MEDIA_ROOT (it would be public)")
    return folder


def path_for(digest: str, thumb: bool = False) -> Path:
    """The file of the photo with this SHA-256 (or of its thumbnail)."""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("not a SHA-256")
    return root() / digest[:2] / (f"{digest}.thumb.jpg" if thumb else f"{digest}.jpg")


def received(openid: str, media_id: str, now: datetime) -> ChatMessage:
    """The user sent a photo to a person: write the transcript line and fetch it off the path."""
    from . import jobs

    line = ChatMessage(openid=openid, direction="in", text=LINE_TEXT, created_at=now)
    db.session.add(line)
    db.session.flush()
    if media_id:
        photo = ChatPhoto(
            message_id=line.id, openid=openid, media_id=media_id[:128], created_at=now, attempts=0
        )
        db.session.add(photo)
        db.session.flush()
        jobs.after_commit(fetch, photo.id)
    return line


def _write(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def store(data: bytes) -> tuple[str, int, int]:
    """Check and clean a photo as proof photos are, keep it and a thumbnail; (sha, w, h)."""
    from .requests import photos

    cleaned, width, height = photos.clean(data)  # raises photos.PhotoError
    digest = hashlib.sha256(cleaned).hexdigest()
    _write(path_for(digest), cleaned)
    with Image.open(io.BytesIO(cleaned)) as image:
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
    _write(path_for(digest, thumb=True), out.getvalue())
    return digest, width, height


def fetch(photo_id: int) -> None:
    """Job: download the photo from WeChat, clean and store it; the console then shows it."""
    from .integrations import api_client
    from .requests import photos
    from .wechat import WeChatApiError

    photo = db.session.get(ChatPhoto, photo_id, with_for_update=True)
    if photo is None or photo.status != PhotoStatus.PENDING:
        return
    photo.attempts = (photo.attempts or 0) + 1
    try:
        data = api_client().download_media(photo.media_id)
    except WeChatApiError as exc:
        # 40007: WeChat no longer has the file (or never had it), final like 48001; a network
        # error or a busy WeChat is retried by the queue, until MAX_ATTEMPTS.
        if exc.code == 40007 or not exc.retryable or photo.attempts >= MAX_ATTEMPTS:
            photo.status = PhotoStatus.FAILED
            photo.error = str(exc)[:200]
            db.session.commit()
            return
        db.session.commit()  # keep the attempt count
        raise
    try:
        digest, width, height = store(data)
    except photos.PhotoError as exc:
        photo.status = PhotoStatus.FAILED
        photo.error = exc.code
    else:
        photo.status = PhotoStatus.STORED
        photo.sha256, photo.width, photo.height = digest, width, height
        photo.stored_at = datetime.now(UTC)
    db.session.commit()


def for_lines(message_ids: list[int]) -> dict[int, ChatPhoto]:
    """The photo behind each of these transcript lines (by line id), in one query."""
    if not message_ids:
        return {}
    rows = db.session.scalars(select(ChatPhoto).where(ChatPhoto.message_id.in_(message_ids)))
    return {p.message_id: p for p in rows}


def requeue_lost(now: datetime, limit: int = 50) -> int:
    """Queue again photos whose job was lost (still pending long after arriving)."""
    from . import jobs

    rows = db.session.scalars(
        select(ChatPhoto.id)
        .where(
            ChatPhoto.status == PhotoStatus.PENDING,
            ChatPhoto.created_at <= now - RETRY_AFTER,
            ChatPhoto.created_at > now - MEDIA_LIFETIME,
            ChatPhoto.attempts < MAX_ATTEMPTS,
        )
        .order_by(ChatPhoto.id)
        .limit(limit)
    ).all()
    for photo_id in rows:
        jobs.after_commit(fetch, photo_id)
    return len(rows)


def _delete_files(photos: list[ChatPhoto]) -> None:
    digests = {p.sha256 for p in photos if p.sha256}
    if not digests:
        return
    # The same picture may have been sent twice; its file goes with its last row.
    still_used = set(
        db.session.scalars(
            select(ChatPhoto.sha256).where(
                ChatPhoto.sha256.in_(digests), ChatPhoto.id.not_in([p.id for p in photos])
            )
        )
    )
    for digest in digests - still_used:
        for thumb in (False, True):
            try:
                path_for(digest, thumb).unlink(missing_ok=True)
            except OSError:
                log.warning("could not delete chat photo %s", digest, exc_info=True)


def forget(openid: str) -> None:
    """The user unfollowed: their photos' rows and files go (before their transcript does)."""
    rows = db.session.scalars(select(ChatPhoto).where(ChatPhoto.openid == openid)).all()
    _delete_files(list(rows))
    for row in rows:
        db.session.delete(row)
    db.session.flush()


def prune(before: datetime) -> int:
    """Delete photos of transcript lines older than ``before`` (the transcript's retention)."""
    rows = db.session.scalars(select(ChatPhoto).where(ChatPhoto.created_at < before)).all()
    _delete_files(list(rows))
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    return len(rows)
