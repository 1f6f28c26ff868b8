"""Map raw similarity to calibrated confidence."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .types import Candidate

if TYPE_CHECKING:
    from .index import Match

__all__ = ["ANSWER_CONFIDENCE", "calibrate", "confidence"]

# Derived from the KB itself, not from user messages (the rule-based matcher, kept for
# comparison by benchmarks/nlu_loko.py --rules), over
# kb_dev (25 entries), tests/data/kb_test.jsonl (8) and tests/nlu/data/kb_extra.jsonl (20):
#   - leave-one-phrasing-out: 204 held-out phrasings, each asked against an index built without
#     it (a paraphrase the index never saw, as a user message is): should be answered right;
#   - leave-one-entry-out: the 186 phrasings of an entry asked against an index without that
#     entry (a near-domain question the KB does not answer): should not be answered.
# Similarity and margin alone answered 65% of the entry-out questions at confidence ~1.0: a
# sibling entry that shares a couple of words while nothing else matches looks like a clear
# winner. The third edge asks how much of what the entry is about the message touches
# (Match.touched): with it entry-out answers fall to ~20% and wrong answers on held-out
# phrasings from 7.8% to ~3%, at the same answered share (~83%).
_MIN_SIMILARITY = 0.2
# The margin is taken on Match.evidence (similarity weighted by coverage); R = 0.9.
_MAX_RIVAL_RATIO = 0.9
# Coverage edge: the midpoint lies between the held-out phrasings (median touched 0.40, 10th
# percentile ~0.17) and the entry-out ones (median 0.06); its own slope is gentler, because
# coverage is coarser than similarity (one concept more or less moves it by ~0.1).
_MIN_TOUCHED = 0.14
_TOUCH_SLOPE = 40.0
# Steepness of both logistic edges: 0.05 of similarity or margin moves confidence ~0.5->0.8.
_SLOPE = 30.0
# When both entries explain (nearly) all of the message and are this close in similarity, it
# is a tie: the gap then comes only from the entries' lengths ("电池怎么充电" against a door
# bell and a lock entry), not from anything the user said.
_TIE_RATIO = 0.8
_TIE_COVERAGE = 0.97
# Understanding answers directly at or above this confidence: exactly the rule above.
ANSWER_CONFIDENCE = 0.5
# An entry about another device than the one the message names (Match.mismatch) is never a
# confident answer however well its words match: "门铃一直响" is not answered by the lock's
# alarm entry. Its confidence is capped well below ANSWER_CONFIDENCE.
_MISMATCH_CONFIDENCE = 0.2


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def confidence(
    similarity: float, rival: float, same_coverage: bool = False, touched: float = 1.0
) -> float:
    """Probability-like confidence from the winner's score, the best rival's, and coverage."""
    if similarity <= 0.0:
        return 0.0
    if same_coverage and rival >= _TIE_RATIO * similarity:
        rival = similarity
    # Margin relative to the winner: a strong match nearly tied with another entry is a
    # coin flip, while a modest match far ahead of everything else is a clear answer.
    margin = 1.0 - rival / similarity
    p_margin = _sigmoid(_SLOPE * (margin - (1.0 - _MAX_RIVAL_RATIO)))
    p_level = _sigmoid(_SLOPE * (similarity - _MIN_SIMILARITY))
    p_cover = _sigmoid(_TOUCH_SLOPE * (touched - _MIN_TOUCHED))
    return min(p_margin, p_level, p_cover)


def calibrate(matches: list[Match]) -> list[Candidate]:
    """Turn raw matches (best first) into candidates with confidence in [0, 1]."""
    out: list[Candidate] = []
    for i, m in enumerate(matches):
        others = [o for j, o in enumerate(matches) if j != i]
        rival = max(others, key=lambda o: o.evidence, default=None)
        if rival is None:
            p = confidence(m.similarity, 0.0, touched=m.touched)
        else:
            tie = m.coverage >= _TIE_COVERAGE and rival.coverage >= _TIE_COVERAGE * m.coverage
            # The level edge reads the similarity; the margin compares coverage-weighted
            # evidence, so a rival that only shares incidental words is no close call.
            p = min(
                confidence(m.evidence, rival.evidence, tie, m.touched),
                confidence(m.similarity, 0.0),
            )
        if m.mismatch:
            p = min(p, _MISMATCH_CONFIDENCE)
        out.append(Candidate(m.doc.id, m.doc.question, round(p, 4)))
    return out
