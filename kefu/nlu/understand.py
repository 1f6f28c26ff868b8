"""Decide what to do with a message: answer, clarify, don't know, or hand off."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from . import dense
from .calibration import ANSWER_CONFIDENCE, calibrate
from .decision import Calibrator, default_calibrator
from .devices import device_concepts
from .handoff import agitated, detect_handoff, semantic_handoff
from .hybrid import HybridIndex
from .index import KbIndex
from .text import (
    ERROR_CODE_RE,
    analyze,
    compact,
    has_wordlike,
    load_lexicon,
    normalize,
    weak_concepts,
)
from .types import Candidate, Understanding

__all__ = ["READ_CHARS", "reading_window", "understand", "understand_rules"]

_DEFAULT_AUDIENCES = frozenset({"all", "end_user"})
# Below this raw similarity nothing is offered, not even as a clarification.
_CLARIFY_MIN_SIMILARITY = 0.28
# Further clarification options must be at least this close to the best one.
_CLARIFY_RATIO = 0.5
# Messages with an off-topic marker (recruiting, other brands) or without any domain concept
# need this much more confidence before the KB answers them.
_OFF_TOPIC_CONFIDENCE = 0.97
# ... and the entry must also account for most of the message: a shared product word
# (充电, 电视) next to an off-topic subject is not a question about our product.
_OFF_TOPIC_COVERAGE = 0.75
_NO_CONCEPT_CONFIDENCE = 0.93
# A mismatched entry this close to the winner (raw evidence, before the type penalty) would have
# kept it from being answered: the calibration's rival ratio R.
_PENALTY_DECIDED = 0.9
_PUNCT_RE = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _is_smalltalk(norm: str) -> bool:
    """True if the message is only greetings/thanks/acknowledgements."""
    rest = _PUNCT_RE.sub("", norm)
    if not rest:
        return True
    phrases = load_lexicon("smalltalk.txt").phrases  # longest first
    changed = True
    while rest and changed:
        changed = False
        for p in phrases:
            if p and rest.startswith(p):
                rest = rest[len(p) :]
                changed = True
                break
    return not rest


def understand_rules(
    text: str, index: KbIndex, audiences: frozenset[str] = _DEFAULT_AUDIENCES
) -> Understanding:
    """The rule-based matcher, kept to compare against (benchmarks/nlu_loko.py --rules)."""
    norm = compact(normalize(text))
    if not has_wordlike(norm):
        return Understanding("none", reason="empty")
    reason = detect_handoff(norm)
    if reason is not None:
        return Understanding("handoff", reason=reason)
    if _is_smalltalk(norm):
        return Understanding("none", reason="smalltalk")
    terms = analyze(norm)
    matches = index.match(terms, audiences, limit=3)
    if not matches:
        return Understanding("none", reason="no_match")
    cands = calibrate(matches)
    best = cands[0]
    if load_lexicon("offtopic.txt").find(norm) is not None:
        if best.score >= _OFF_TOPIC_CONFIDENCE and matches[0].coverage >= _OFF_TOPIC_COVERAGE:
            return Understanding("answer", (best,))
        return Understanding("none", tuple(cands), reason="off_topic")
    weak = weak_concepts()
    topics = [c for c in terms.concepts if c not in weak]
    codes = [w for w in terms.words if ERROR_CODE_RE.match(w)]
    subjects = topics
    others = [c for c in topics if c not in device_concepts()]
    if others and any(
        m.mismatch
        and (
            m.raw_evidence >= _PENALTY_DECIDED * matches[0].evidence
            or index.shares_concept(m.row, others)
        )
        for m in matches
    ):
        # An entry about another device matched the rest of the message (or only the type
        # penalty put this one ahead). A device word says which product, not what about it:
        # an entry that shares only the device ("门铃怎么充电" for "门铃一直嘀嘀响") is not the
        # answer just because the entries about the rest were for a lock or a camera.
        subjects = others
    if topics and not codes and not index.shares_concept(matches[0].row, subjects):
        # The message names a product or feature, and the best entry mentions none of them:
        # whatever it matched on ("某个", "怎么") is incidental, so it is not an answer.
        needed = 1.01
    elif not topics:
        # No product or feature word at all ("晚上吃什么好"): only a KB word of two or more
        # characters that the message shares with the entry can justify anything.
        if not any(len(w) > 1 and index.has_word(w) for w in terms.words):
            return Understanding("none", tuple(cands), reason="off_topic")
        needed = _NO_CONCEPT_CONFIDENCE
    else:
        needed = ANSWER_CONFIDENCE
    if best.score >= needed:
        return Understanding("answer", (best,))
    # The close-call list offers only entries about the device the message names: a doorbell
    # question choosing between two lock entries is no useful choice (devices.py).
    typed = [(c, m) for c, m in zip(cands, matches, strict=True) if not m.mismatch]
    top = max((m.similarity for _, m in typed), default=0.0)
    if top >= _CLARIFY_MIN_SIMILARITY:
        close = [c for c, m in typed if m.similarity >= _CLARIFY_RATIO * top]
        if len(close) >= 2:
            return Understanding("clarify", tuple(close[:3]))
    return Understanding("none", tuple(cands), reason="low_confidence")


def understand(
    text: str,
    index: HybridIndex,
    audiences: frozenset[str] = _DEFAULT_AUDIENCES,
    products: frozenset[str] = frozenset(),
    calibrator: Calibrator | None = None,
) -> Understanding:
    """Classify one user message against ``index`` for a user who may see ``audiences``.

    ``products`` (model codes or categories from the conversation or the message) narrows the
    entries to those about that product or about none in particular.
    """
    text = text[:HANDOFF_READ_CHARS]
    norm = compact(normalize(text))
    if not has_wordlike(norm):
        return Understanding("none", reason="empty")
    # The phrase lists read the whole message (a complaint can come anywhere in it); the
    # search reads its reading window.
    reason = detect_handoff(text, index.uses_word)
    if reason is not None:
        return Understanding("handoff", reason=reason)
    text = reading_window(text)
    if _is_smalltalk(norm):
        return Understanding("none", reason="smalltalk")
    cal = calibrator or default_calibrator()
    # The message is embedded once, for retrieval and for the semantic handoff detector.
    prepared = index.prepared(text)
    vector = dense.embed([prepared], query=True)[0] if prepared else None
    result = decide(text, index, audiences, products, cal, vector=vector, prepared=prepared)
    if result.kind != "answer" and vector is not None:
        # What the KB answers stays answered (a KB with an entry on changing the bound phone
        # number has made it self-service); otherwise a message that means "I need a person"
        # in words no list has goes to one, unless it is as close to this KB's own questions.
        reason = semantic_handoff(vector, cal.handoff_margin, index.kb_similarity(vector))
        if reason is not None:
            return Understanding("handoff", reason=reason)
    if result.kind != "answer":
        result = clause_answer(text, index, audiences, products, cal, result) or result
    if result.kind != "answer" and agitated(text):
        # "!!!" or "???" and a question the KB cannot answer: a person, not a list.
        return Understanding("handoff", reason="angry")
    return result


# Where a message's clauses meet: sentence punctuation, and spaces between Chinese characters
# (how many people separate clauses on a phone keyboard).
_CLAUSE_BREAK_RE = re.compile(
    r"[，。！？；、,!?;~～…\n]+|(?<!\d)\.+|\.+(?!\d)|(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])"
)
# A clause shorter than this (in characters) says too little alone: "谢谢", "在吗".
_CLAUSE_MIN_CHARS = 4
# At most this many clause views are searched per message (each costs an embedding).
_CLAUSE_VIEWS = 6

# The search reads this many characters of a message: its cost grows with the length (an
# embedding per clause), and a question is asked in far fewer. The phrase lists of the handoff
# detector read up to HANDOFF_READ_CHARS, which costs little.
READ_CHARS = 200
HANDOFF_READ_CHARS = 2048  # all of what the webhook reads (kefu.wechat.MAX_TEXT_CHARS)


def reading_window(text: str, limit: int = READ_CHARS) -> str:
    """At most ``limit`` characters of ``text``: its opening and, mostly, its end.

    A long post tells its story first and asks at the end ("…试了好几种办法都不行，现在该怎么
    办"), or asks first and explains after: the first clause (up to a third of the window) is
    kept, and the rest of the window is filled from the end, where the question usually is.
    """
    if len(text) <= limit:
        return text
    head_limit = limit // 3
    first_break = _CLAUSE_BREAK_RE.search(text)
    end = first_break.start() if first_break and first_break.start() <= head_limit else head_limit
    head = text[:end]
    if not head:  # the post opens with punctuation: its end fills the window
        return text[-limit:]
    return head + "，" + text[len(text) - (limit - len(head) - 1) :]


def clause_views(text: str) -> list[str]:
    """The parts of a long message that could each be its question: clauses and clause pairs.

    People tell a story before they ask ("上个月买的，装在老家给爸妈用，现在连不上网了"): the
    whole message, embedded as one, is mostly the story. Each clause and each pair of
    neighbouring clauses is also asked on its own; the last ones first, where the question
    usually is.
    """
    clauses = [c.strip() for c in _CLAUSE_BREAK_RE.split(text) if c and c.strip()]
    clauses = [c for c in clauses if len(c) >= _CLAUSE_MIN_CHARS]
    if len(clauses) < 2:
        return []
    views: list[str] = []
    for i in range(len(clauses) - 1, -1, -1):
        views.append(clauses[i])
        if i > 0:
            views.append(clauses[i - 1] + "，" + clauses[i])
    return list(dict.fromkeys(views))[:_CLAUSE_VIEWS]


def clause_answer(
    text: str,
    index: HybridIndex,
    audiences: frozenset[str],
    products: frozenset[str],
    cal: Calibrator,
    whole: Understanding,
) -> Understanding | None:
    """The answer one clause (or pair) of ``text`` gives, if it confirms the whole's best entry.

    The whole message's best entry, too unsure to answer, is answered when a clause alone
    gives it with confidence: the story around a question dilutes its meaning, not its topic.
    Another entry a clause alone finds is not taken: a clause ("还没拆封") can mean many things.
    The first clause that is sure enough ends the search (each one costs an embedding).
    """
    if cal.clause_threshold > 1.0:  # not fitted: clauses are off
        return None
    views = clause_confirmations(text, index, audiences, products, cal, whole)
    return next((v for v in views if v.candidates[0].score >= cal.clause_threshold), None)


def clause_confirmations(
    text: str,
    index: HybridIndex,
    audiences: frozenset[str],
    products: frozenset[str],
    cal: Calibrator,
    whole: Understanding,
) -> Iterator[Understanding]:
    """Each clause view of ``text`` that answers with the whole message's best entry."""
    if not whole.candidates:
        return
    best = whole.candidates[0].id
    for view in clause_views(text):
        prepared = index.prepared(view)
        if not prepared:
            continue
        vector = dense.embed([prepared], query=True)[0]
        found = decide(view, index, audiences, products, cal, vector=vector, prepared=prepared)
        if found.kind == "answer" and found.candidates[0].id == best:
            yield found


def decide(
    text: str,
    index: HybridIndex,
    audiences: frozenset[str],
    products: frozenset[str] = frozenset(),
    calibrator: Calibrator | None = None,
    vector: np.ndarray | None = None,
    prepared: str | None = None,
) -> Understanding:
    """Retrieval and the fitted decision only: answer, numbered list, or nothing.

    ``vector`` is the message's embedding and ``prepared`` its text as ``index.prepared``
    gives it, if the caller has them already.
    """
    cal = calibrator or default_calibrator()
    if prepared is None:
        prepared = index.prepared(text)
    cands = index.candidates(text, audiences, products, vector=vector, prepared=prepared)
    if not cands and products:
        cands = index.candidates(text, audiences, vector=vector, prepared=prepared)
    if not cands:
        return Understanding("none", reason="no_match")
    probs = cal.probabilities(cands)
    order = sorted(range(len(cands)), key=lambda i: -probs[i])
    ranked = tuple(
        Candidate(index.ids[cands[i].row], index.questions[cands[i].row], round(float(probs[i]), 4))
        for i in order
    )
    best = ranked[0]
    if best.score >= cal.answer_threshold:
        return Understanding("answer", ranked[:1])
    if best.score >= cal.list_threshold and len(ranked) >= 2:
        # The fitted list threshold is the share of lists that hold the right entry among
        # every message whose best entry reaches it, so every such message gets a list: the
        # best two, and a third only if it is a real contender next to the best.
        listed = ranked[:2] + tuple(c for c in ranked[2:3] if c.score >= best.score / 4)
        return Understanding("clarify", listed)
    return Understanding("none", ranked[:3], reason="low_confidence")
