"""Customer satisfaction: after a ticket is resolved the customer is asked once, in chat, for 1-5.

The rating arrives as an ordinary message (a digit, optionally followed by a comment); the
dialog hands it here before anything else reads it. Nothing here commits.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db
from .models import UTCDateTime, utcnow
from .tickets.models import Ticket  # noqa: F401  (the table ratings refer to)

# A rating is accepted for this long after the question; later a digit is just a digit.
ANSWER_WITHIN = timedelta(days=3)
_RATING_RE = re.compile(r"^\s*([1-5１-５])\s*(?:分|星)?\s*[,，.。:：;；!！、\s]*(.*)$", re.S)
TEXT = {
    "ask": (
        "您的工单 {number} 已处理完成。请为本次服务打分：回复 1-5 的数字（5 为非常满意，"
        "1 为很不满意），也可以在数字后面写下您的意见。"
    ),
    "thanks": "感谢您的评价！我们会继续改进服务。",
}


class CsatRating(db.Model):  # type: ignore[name-defined]
    """The satisfaction question for one resolved ticket, and the customer's answer."""

    __tablename__ = "csat_ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    # Cleared when the user unfollows; the score stays for the report.
    openid: Mapped[str | None] = mapped_column(String(64), index=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def ask(ticket_id: int, number: str, openid: str | None, now: datetime) -> bool:
    """Ask the customer of a resolved ticket for a rating, once per ticket; True if asked."""
    from . import outbox

    if not openid:
        return False
    if db.session.scalar(select(CsatRating.id).where(CsatRating.ticket_id == ticket_id)):
        return False
    db.session.add(CsatRating(ticket_id=ticket_id, openid=openid, asked_at=now))
    outbox.enqueue_text(openid, TEXT["ask"].format(number=number), purpose="csat", ref=number)
    return True


def parse(message: str) -> tuple[int, str] | None:
    """A rating reply: (score, comment), or None when the message is not one."""
    match = _RATING_RE.match(message or "")
    if not match:
        return None
    digit = match.group(1).translate(str.maketrans("１２３４５", "12345"))
    return int(digit), match.group(2).strip()[:500]


def answer(openid: str, message: str, now: datetime) -> str | None:
    """Store the reply to an open rating question; returns the thank-you, or None if not one."""
    parsed = parse(message)
    if parsed is None:
        return None
    pending = db.session.scalar(
        select(CsatRating)
        .where(
            CsatRating.openid == openid,
            CsatRating.score.is_(None),
            CsatRating.asked_at >= now - ANSWER_WITHIN,
        )
        .order_by(CsatRating.asked_at.desc())
        .limit(1)
    )
    if pending is None:
        return None
    pending.score, comment = parsed
    pending.comment = comment or None
    pending.answered_at = now
    return TEXT["thanks"]


def forget(openid: str) -> None:
    """The user unfollowed: ratings keep their score for the report, not the person."""
    db.session.execute(update(CsatRating).where(CsatRating.openid == openid).values(openid=None))
