"""Accuracy floors on labelled messages, scored by the same module as ``flask kb eval``."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefu.evaluation import Scores, in_story, load_cases
from kefu.nlu import HybridIndex, understand
from kefu.nlu.corpus import load_docs, to_result

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "eval"
ALL = frozenset({"all", "end_user", "installer"})


def _score(kb: Path, questions: Path) -> Scores:
    index = HybridIndex.build(load_docs(kb))
    scores = Scores()
    for case in load_cases(questions):
        scores.add(case, to_result(understand(case.text, index, ALL)))
    return scores


@pytest.mark.skipif(not SHARED.exists(), reason="shared eval KB not available")
@pytest.mark.parametrize(
    ("kb", "questions", "correct"),
    [
        (SHARED / "kb_dev.jsonl", DATA / "questions_extra.jsonl", 0.80),
        (SHARED / "kb_locks.jsonl", SHARED / "questions_locks.jsonl", 0.70),
    ],
)
def test_few_wrong_answers_and_nothing_out_of_scope(
    kb: Path, questions: Path, correct: float
) -> None:
    # The wrong-answer and kept-out floors are the targets; the correct share is today's
    # level (benchmarks/nlu_loko.py measures it held out), so that a regression shows.
    scores = _score(kb, questions)
    assert scores.rate("wrong") <= 0.03
    assert scores.rate("kept_out") >= 0.90
    assert scores.rate("correct") >= correct


@pytest.mark.skipif(not SHARED.exists(), reason="shared eval KB not available")
def test_a_question_told_inside_a_story_is_still_answered() -> None:
    index = HybridIndex.build(load_docs(SHARED / "kb_locks.jsonl"))
    answerable = load_cases(SHARED / "questions_locks.jsonl")
    # Every other answerable message (each story costs a few embeddings).
    cases = [c for c in answerable if c.expect not in {"none", "human"}][::2]
    right = wrong = 0
    for n, case in enumerate(cases):
        u = understand(in_story(case.text, n), index, ALL)
        if u.kind == "answer":
            right += u.candidates[0].id == case.expect
            wrong += u.candidates[0].id != case.expect
    assert wrong <= 0.03 * len(cases)
    assert right >= 0.60 * len(cases)
