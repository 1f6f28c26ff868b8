"""Development data for the decision: KB files, labelled messages, held-out phrasings.

A KB teaches the decision even without user messages: each phrasing asked against an index
built without it is a paraphrase the index never saw (it should be answered with its entry),
and each phrasing asked against an index without its whole entry is a near-domain question
the KB does not answer (it should not be). Labelled user messages add how people really write.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..evaluation import Case, Result, Scores
from . import dense
from .decision import Calibrator, Sample
from .handoff import detect_handoff, fit_margin, semantic_score
from .hybrid import Features, HybridIndex
from .tuning import TUNING, Tuning
from .types import KbDoc, Understanding

__all__ = [
    "ClauseCase",
    "HandoffCase",
    "clause_cases",
    "fit_clause",
    "fit_handoff",
    "handoff_cases",
    "load_docs",
    "phrasing_cases",
    "samples",
    "score",
    "to_result",
]

_cache: dict[str, np.ndarray] = {}


def cached_embed(texts: Sequence[str]) -> np.ndarray:
    """``dense.embed`` with memory: the same phrasings are indexed again in every variant."""
    todo = [t for t in dict.fromkeys(texts) if t not in _cache]
    if todo:
        for t, v in zip(todo, dense.embed(todo), strict=True):
            _cache[t] = v
    if not texts:
        return np.zeros((0, dense.DIM), dtype=np.float32)
    return np.vstack([_cache[t] for t in texts])


def load_docs(path: Path) -> list[KbDoc]:
    """KB entries from a JSON Lines file (the import format)."""
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            docs.append(
                KbDoc(
                    id=d["id"],
                    question=d["question"],
                    alternates=tuple(d.get("alternates", ())),
                    audience=d.get("audience", "all"),
                    tags=tuple(d.get("tags", ())),
                    answer=d.get("answer", ""),
                    products=tuple(d.get("products", ())),
                )
            )
    return docs


def _without_phrasing(docs: list[KbDoc], d: int, k: int) -> list[KbDoc]:
    doc = docs[d]
    phrasings = [doc.question, *doc.alternates]
    rest = phrasings[:k] + phrasings[k + 1 :]
    out = list(docs)
    out[d] = dataclasses.replace(doc, question=rest[0], alternates=tuple(rest[1:]))
    return out


def phrasing_cases(docs: list[KbDoc]) -> tuple[list[Case], list[list[KbDoc]]]:
    """Held-out phrasings and the KB variant each is asked against."""
    cases: list[Case] = []
    variants: list[list[KbDoc]] = []
    for d, doc in enumerate(docs):
        phrasings = [doc.question, *doc.alternates]
        if len(phrasings) >= 2:
            for k, text in enumerate(phrasings):
                cases.append(Case(text, doc.id))
                variants.append(_without_phrasing(docs, d, k))
        without = docs[:d] + docs[d + 1 :]
        for text in phrasings:
            cases.append(Case(text, "none"))
            variants.append(without)
    return cases, variants


def _sample(
    index: HybridIndex, case: Case, audiences: frozenset[str], weight: float = 1.0
) -> Sample:
    cands = tuple(index.candidates(case.text, audiences))
    return Sample(cands, index.row(case.expect), weight)


ALL = frozenset({"all", "end_user", "installer"})


def samples(docs: list[KbDoc], cases: Sequence[Case], tuning: Tuning = TUNING) -> list[Sample]:
    """Fitting samples from a KB: its labelled messages (not the handoff ones) and phrasings."""
    out: list[Sample] = []
    if cases:
        index = HybridIndex.build(docs, embed=cached_embed)
        weight = tuning.message_weight
        out += [_sample(index, c, ALL, weight) for c in cases if c.expect != "human"]
    pcases, variants = phrasing_cases(docs)
    built: dict[int, HybridIndex] = {}
    for case, variant in zip(pcases, variants, strict=True):
        # Entry-out phrasings are left out of the fit: their near-duplicate siblings make them
        # far harder than real out-of-scope messages and pushed every threshold to the top.
        if case.expect == "none":
            continue
        key = id(variant)
        if key not in built:
            built[key] = HybridIndex.build(variant, embed=cached_embed)
        out.append(_sample(built[key], case, ALL))
    return out


@dataclass(frozen=True)
class HandoffCase:
    """A labelled message as the semantic handoff fit sees it."""

    candidates: tuple[Features, ...]
    margin: float  # kefu.nlu.handoff.semantic_score(...).margin
    human: bool  # labelled "human"
    lexical: bool  # the phrase lists hand it off already


def handoff_cases(docs: list[KbDoc], cases: Sequence[Case]) -> list[HandoffCase]:
    """Every labelled message of a KB with its candidates and its semantic handoff margin."""
    if not cases:
        return []
    index = HybridIndex.build(docs, embed=cached_embed)
    out = []
    for case in cases:
        prepared = index.prepared(case.text)
        if not prepared:
            continue
        vector = dense.embed([prepared], query=True)[0]
        out.append(
            HandoffCase(
                tuple(index.candidates(case.text, ALL, vector=vector, prepared=prepared)),
                semantic_score(vector, index.kb_similarity(vector)).margin,
                case.expect == "human",
                detect_handoff(case.text, index.uses_word) is not None,
            )
        )
    return out


def fit_handoff(cases: Sequence[HandoffCase], cal: Calibrator, tuning: Tuning) -> float:
    """The semantic handoff margin for ``cal``: see ``Tuning.handoff_false_budget``.

    The messages that count against it are those the detector would be asked about: not
    handed off by the phrase lists, not answered by the KB, and labelled as needing no person.
    """
    negatives = []
    for h in cases:
        if h.human or h.lexical:
            continue
        probs = cal.probabilities(h.candidates)
        if len(probs) and float(probs.max()) >= cal.answer_threshold:
            continue
        negatives.append(h.margin)
    positives = [h.margin for h in cases if h.human and not h.lexical]
    return fit_margin(positives, negatives, tuning.handoff_false_budget)


@dataclass(frozen=True)
class ClauseCase:
    """A labelled message of several clauses, with the index it is asked against."""

    index: HybridIndex
    text: str
    expect: str  # entry id, or "none"


def clause_cases(docs: list[KbDoc], cases: Sequence[Case]) -> list[ClauseCase]:
    """The labelled messages (not the handoff ones) of a KB, for ``fit_clause``."""
    if not cases:
        return []
    index = HybridIndex.build(docs, embed=cached_embed)
    return [ClauseCase(index, c.text, c.expect) for c in cases if c.expect != "human"]


def fit_clause(cases: Sequence[ClauseCase], cal: Calibrator, tuning: Tuning) -> float:
    """The clause threshold for ``cal``: the lowest probability at which clause answers stay
    within what the whole messages' answers left of the wrong-answer and out-of-scope budgets.
    """
    from .understand import clause_confirmations, decide

    n_ans = sum(c.expect != "none" for c in cases)
    n_oos = len(cases) - n_ans
    wrong_left = tuning.wrong_budget * n_ans
    oos_left = tuning.out_of_scope_budget * n_oos
    found: list[tuple[float, bool, bool]] = []  # probability, answerable, right
    for c in cases:
        whole = decide(c.text, c.index, ALL, calibrator=cal)
        answerable = c.expect != "none"
        if whole.kind == "answer":
            wrong_left -= answerable and whole.candidates[0].id != c.expect
            oos_left -= not answerable
            continue
        views = clause_confirmations(c.text, c.index, ALL, frozenset(), cal, whole)
        scores = [v.candidates[0].score for v in views]
        if scores:
            found.append((max(scores), answerable, whole.candidates[0].id == c.expect))
    threshold = 1.01
    wrong = oos = 0
    # Messages of equal probability are taken together: a threshold answers all of them.
    for p, group in itertools.groupby(sorted(found, reverse=True), key=lambda f: f[0]):
        for _, answerable, right in group:
            wrong += answerable and not right
            oos += not answerable
        if wrong > wrong_left or oos > oos_left:
            break
        threshold = p
    return threshold


def to_result(u: Understanding) -> Result:
    """An Understanding in the scorer's terms."""
    if u.kind == "answer":
        return Result("answer", u.candidates[0].id, reason=u.reason)
    if u.kind == "clarify":
        return Result("clarify", choices=tuple(c.id for c in u.candidates), reason=u.reason)
    return Result(u.kind, reason=u.reason)


def score(
    docs: list[KbDoc], cases: Sequence[Case], cal: Calibrator, audiences: frozenset[str]
) -> Scores:
    """Score a KB: its labelled messages through ``understand``, else its held-out phrasings."""
    from .understand import decide, understand

    scores = Scores()
    if cases:
        index = HybridIndex.build(docs, embed=cached_embed)
        for case in cases:
            scores.add(case, to_result(understand(case.text, index, audiences, calibrator=cal)))
        return scores
    pcases, variants = phrasing_cases(docs)
    built: dict[int, HybridIndex] = {}
    for case, variant in zip(pcases, variants, strict=True):
        key = id(variant)
        if key not in built:
            built[key] = HybridIndex.build(variant, embed=cached_embed)
        scores.add(case, to_result(decide(case.text, built[key], audiences, calibrator=cal)))
    return scores
