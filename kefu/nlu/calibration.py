"""Map raw similarity to calibrated confidence."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .types import Candidate

if TYPE_CHECKING:
    from .index import Match

__all__ = ["ANSWER_CONFIDENCE", "calibrate", "confidence"]

# Derived from the KB itself, not from user messages (benchmarks/nlu_calibration.py):
# leave-one-phrasing-out over kb_dev (25 entries), tests/data/kb_test.jsonl (8) and
# tests/nlu/data/kb_extra.jsonl (20) -- 204 held-out phrasings, each asked against an index
# built without it. The top entry is right for 88% of them. Among the rules "answer when
# s1 >= A and s2 <= R * s1", the share answered rises steeply up to R = 0.9 and then the
# precision drops (R 0.8: 86% answered at 95.4%; R 0.9: 91% at 91.4%; R 1.0 adds only
# coin flips), while A above 0.2 only loses answers. Held-out phrasings are a pessimistic
# stand-in for messages (their entry lost a phrasing), so the band's precision on messages
# is higher; the two dials are where a ranked-first entry stops being a clear winner.
_MIN_SIMILARITY = 0.2
_MAX_RIVAL_RATIO = 0.9
# Steepness of both logistic edges: 0.05 of similarity or margin moves confidence ~0.5->0.8.
_SLOPE = 30.0
# When both entries explain (nearly) all of the message and are this close in similarity, it
# is a tie: the gap then comes only from the entries' lengths ("电池怎么充电" against a door
# bell and a lock entry), not from anything the user said.
_TIE_RATIO = 0.8
_TIE_COVERAGE = 0.97
# Understanding answers directly at or above this confidence: exactly the rule above.
ANSWER_CONFIDENCE = 0.5


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def confidence(similarity: float, rival: float, same_coverage: bool = False) -> float:
    """Probability-like confidence from a similarity and the best competing similarity."""
    if similarity <= 0.0:
        return 0.0
    if same_coverage and rival >= _TIE_RATIO * similarity:
        rival = similarity
    # Margin relative to the winner: a strong match nearly tied with another entry is a
    # coin flip, while a modest match far ahead of everything else is a clear answer.
    margin = 1.0 - rival / similarity
    p_margin = _sigmoid(_SLOPE * (margin - (1.0 - _MAX_RIVAL_RATIO)))
    p_level = _sigmoid(_SLOPE * (similarity - _MIN_SIMILARITY))
    return min(p_margin, p_level)


def calibrate(matches: list[Match]) -> list[Candidate]:
    """Turn raw matches (best first) into candidates with confidence in [0, 1]."""
    out: list[Candidate] = []
    for i, m in enumerate(matches):
        others = [o for j, o in enumerate(matches) if j != i]
        rival = max(others, key=lambda o: o.similarity, default=None)
        if rival is None:
            p = confidence(m.similarity, 0.0)
        else:
            tie = m.coverage >= _TIE_COVERAGE and rival.coverage >= _TIE_COVERAGE * m.coverage
            p = confidence(m.similarity, rival.similarity, tie)
        out.append(Candidate(m.doc.id, m.doc.question, round(p, 4)))
    return out
