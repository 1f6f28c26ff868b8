"""Questions the bot could not answer, grouped by similarity for the knowledge-base team.

Similar phrasings ("摄像头连不上wifi" and "摄像头连不上 WiFi 了") land in one group, so the list
shows each gap once, with how often it was asked. Nothing here commits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from .extensions import db
from .models import UnansweredQuestion
from .nlu.text import normalize

# Character bigrams shared (Jaccard) for two questions to count as the same gap.
SIMILARITY = 0.5
MAX_QUESTIONS = 5000


@dataclass
class Group:
    """Similar unanswered questions: the most asked wording first."""

    texts: Counter[str] = field(default_factory=Counter)
    guesses: Counter[str] = field(default_factory=Counter)
    grams: set[str] = field(default_factory=set)
    last_at: datetime | None = None

    @property
    def count(self) -> int:
        """How many times the group was asked."""
        return sum(self.texts.values())

    @property
    def text(self) -> str:
        """The most asked wording."""
        return self.texts.most_common(1)[0][0]

    @property
    def best_guess(self) -> str | None:
        """The KB entry the bot thought closest most often."""
        return self.guesses.most_common(1)[0][0] if self.guesses else None


def bigrams(text: str) -> set[str]:
    """Character bigrams of the normalised text (single characters for one-character text)."""
    clean = "".join(normalize(text).split())
    if len(clean) < 2:
        return {clean} if clean else set()
    return {clean[i : i + 2] for i in range(len(clean) - 1)}


def similar(a: set[str], b: set[str]) -> bool:
    """Whether two bigram sets are close enough to be one question."""
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= SIMILARITY


def groups(now: datetime, days: int = 7, limit: int = 100) -> list[Group]:
    """Open (not yet handled) questions of the last ``days``, grouped, most asked first."""
    rows = db.session.execute(
        select(
            UnansweredQuestion.text, UnansweredQuestion.best_guess, UnansweredQuestion.created_at
        )
        .where(
            UnansweredQuestion.created_at >= now - timedelta(days=days),
            UnansweredQuestion.handled_at.is_(None),
        )
        .order_by(UnansweredQuestion.created_at.desc())
        .limit(MAX_QUESTIONS)
    ).all()
    # Identical texts first, so frequent wordings seed the groups.
    by_text: dict[str, list[tuple[str | None, datetime]]] = {}
    for text, guess, at in rows:
        by_text.setdefault(text, []).append((guess, at))
    found: list[Group] = []
    for text, seen in sorted(by_text.items(), key=lambda item: -len(item[1])):
        grams = bigrams(text)
        group = next((g for g in found if similar(grams, g.grams)), None)
        if group is None:
            group = Group(grams=set(grams))
            found.append(group)
        group.texts[text] += len(seen)
        group.guesses.update(g for g, _ in seen if g)
        latest = max(at for _, at in seen)
        group.last_at = max(group.last_at or latest, latest)
    found.sort(key=lambda g: (-g.count, g.text))
    return found[:limit]


def mark_handled(texts: list[str], entry_id: str, now: datetime) -> int:
    """The KB now covers these questions: take them off the list (kept for the reports)."""
    wanted = [t for t in texts if t]
    if not wanted:
        return 0
    result = db.session.execute(
        update(UnansweredQuestion)
        .where(UnansweredQuestion.text.in_(wanted), UnansweredQuestion.handled_at.is_(None))
        .values(handled_at=now, kb_entry_id=entry_id)
    )
    return int(result.rowcount or 0)
