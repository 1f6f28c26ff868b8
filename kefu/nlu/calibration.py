"""Map raw similarity to calibrated confidence."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .types import Candidate

if TYPE_CHECKING:
    from .index import Match

__all__ = ["ANSWER_CONFIDENCE", "calibrate", "confidence"]

# Evidence for an entry is its similarity minus half the best competitor's: a match that is
# good in absolute terms but nearly tied with another entry is a coin flip, not an answer.
_RIVAL_PENALTY = 0.5
# Logistic set by hand on development data: evidence 0.40 maps to 0.75, evidence at or
# below 0.24 to under 0.25.
_SLOPE = 14.0
_MIDPOINT = 0.32
# Above this rival/best similarity ratio the confidence shrinks linearly towards 0 at a tie.
_TIE_RATIO = 0.7
# Understanding answers directly only at or above this confidence.
ANSWER_CONFIDENCE = 0.75


def confidence(similarity: float, rival: float) -> float:
    """Probability-like confidence from a similarity and the best competing similarity."""
    evidence = similarity - _RIVAL_PENALTY * rival
    p = 1.0 / (1.0 + math.exp(-_SLOPE * (evidence - _MIDPOINT)))
    if similarity > 0.0 and rival > _TIE_RATIO * similarity:
        # Two entries within a few percent of each other: the better one is about as likely
        # as the other, however strong both are.
        p *= max(0.0, 1.0 - rival / similarity) / (1.0 - _TIE_RATIO)
    return p


def calibrate(matches: list[Match]) -> list[Candidate]:
    """Turn raw matches (best first) into candidates with confidence in [0, 1]."""
    out: list[Candidate] = []
    for i, m in enumerate(matches):
        rival = max((o.similarity for j, o in enumerate(matches) if j != i), default=0.0)
        out.append(Candidate(m.doc.id, m.doc.question, round(confidence(m.similarity, rival), 4)))
    return out
