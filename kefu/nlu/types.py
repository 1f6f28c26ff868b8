"""Value types shared by the index and the decision logic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Candidate", "KbDoc", "Understanding"]


@dataclass(frozen=True)
class KbDoc:
    """One knowledge-base entry as the index sees it."""

    id: str
    question: str
    alternates: tuple[str, ...]
    audience: str  # "all" | "end_user" | "installer"
    tags: tuple[str, ...] = ()
    # The reply text; indexed as a separate, down-weighted field (its vocabulary is often the
    # user's: 指示灯, 红灯, 进水), never required.
    answer: str = ""
    # Model codes and categories the entry is about (empty: any product).
    products: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A KB entry that may answer a message, with calibrated confidence in [0, 1]."""

    id: str
    question: str
    score: float


@dataclass(frozen=True)
class Understanding:
    """What to do with a message: answer, clarify, say "don't know", or hand off."""

    kind: Literal["answer", "clarify", "none", "handoff"]
    candidates: tuple[Candidate, ...] = ()
    reason: str | None = None
