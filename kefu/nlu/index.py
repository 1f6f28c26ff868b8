"""Inverted index over KB phrasings with IDF-weighted cosine scoring."""

from __future__ import annotations

import heapq
import math
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from .calibration import calibrate
from .devices import conflicts, entry_types, message_types, type_names
from .text import ERROR_CODE_RE, Terms, analyze, synonyms, weak_concepts
from .types import Candidate, KbDoc

__all__ = ["KbIndex", "Match", "TYPE_PENALTY"]

# Relative weight of each term kind. Concepts carry the synonym knowledge; bigrams are a
# fuzzy fallback for misspellings and segmentation differences, so they count for less.
_KIND_WEIGHT = {"c": 1.0, "w": 1.0, "b": 0.35}
# A word that is also a synonym surface already counted through its concept; the word
# itself only adds a small bonus for the exact wording.
_SURFACE_WORD_WEIGHT = 0.35
_SINGLE_CHAR_WEIGHT = 0.5
# Context groups (time words, generic verbs) help to rank but are not a topic.
_WEAK_CONCEPT_WEIGHT = 0.5
# An error code the KB knows (400018) pins the entry down more than any ordinary word.
_CODE_WEIGHT = 2.0
_MODEL_RE = re.compile(r"^(?=.*\d)[0-9a-z][0-9a-z\-_./]*$")
# Unknown query terms weigh this fraction of the rarest known term: they show the message
# talks about something the KB may not cover, but a rare word alone is weak evidence.
_OOV_FACTOR = 0.55
# The per-entry profile (all phrasings and tags together) competes with single phrasings
# at a discount, so entries are found from words spread over several alternates.
_PROFILE_FACTOR = 0.85
# The profile unites every phrasing, so its length says little against a message; it is
# normalised more gently than a single phrasing.
_PROFILE_NORM_EXP = 0.35
# Candidate generation walks posting lists rarest-term-first until this many postings were
# read; remaining (frequent) terms are only scored for the surviving candidates.
_POSTING_BUDGET = 6000
# Similarity = (share of the query matched)^Q * (share of the phrasing matched)^(1-Q); Q > 0.5
# because a short message fully contained in a long KB question is a good match, while
# unmatched message words are the main sign that the KB does not cover it.
_Q_EXP = 0.55
_RESCORE = 64
# BM25F-style answer field: answer-only terms join the entry's profile at this share of their
# weight (the reply names what users see and say: 指示灯, 红灯, 进水), without adding to the
# profile's length norm, because a long answer is not a sign of a worse match.
_ANSWER_WEIGHT = 0.45
# Answer bigrams are left out: a 100-character reply yields dozens of accidental pairs.
_ANSWER_KINDS = ("c", "w")
# Coverage of the entry: the share of its question/alternates weight (concepts and words, summed
# over the phrasings, so a term every phrasing repeats counts as what the entry is about) that
# the message touches. Answer-only and bigram matches do not count: a reply mentions many
# incidental words, and bigrams are a spelling fallback, not a topic. Entries are ranked by
# similarity * (touched + _TOUCH_FLOOR) ** _TOUCH_EXP, so between two similar matches the one
# whose own subject the message names wins.
_TOUCH_FLOOR = 0.02
_TOUCH_EXP = 0.25
# How many entries (best similarity first) are re-ranked by that evidence.
_RERANK = 8
# Device-type mismatch: when the message names a device (门铃, 录像机, 智能锁) and an entry is
# specifically about another one (kefu/nlu/devices.py), the entry's evidence is cut to this
# share, so an entry of the right type ranks first when it is anywhere close, and the
# mismatched entry is a weak rival for it; calibrate() also keeps it below the answer line.
# A module switch so benchmarks can measure with and without it.
TYPE_PENALTY = True
_MISMATCH_FACTOR = 0.5


@dataclass(frozen=True)
class Match:
    """Raw retrieval result for one entry (before calibration)."""

    doc: KbDoc
    similarity: float  # best IDF similarity over the entry's phrasings and profile
    coverage: float  # share of the query's weight found in that best phrasing
    row: int = -1  # the entry's position in the index
    touched: float = 1.0  # share of the entry's question/alternates weight the query touches
    evidence: float = -1.0  # ranking score: similarity weighted by ``touched``
    mismatch: bool = False  # the message names a device type the entry is not about

    def __post_init__(self) -> None:
        if self.evidence < 0.0:
            object.__setattr__(self, "evidence", _evidence(self.similarity, self.touched))

    @property
    def raw_evidence(self) -> float:
        """Evidence before any device-type penalty."""
        return _evidence(self.similarity, self.touched)


def _evidence(similarity: float, touched: float) -> float:
    return similarity * (touched + _TOUCH_FLOOR) ** _TOUCH_EXP


def _kind_weight(term: str) -> float:
    kind = term[0]
    body = term[2:]
    if kind == "c":
        return _WEAK_CONCEPT_WEIGHT if body in weak_concepts() else _KIND_WEIGHT["c"]
    if kind == "w":
        if body in synonyms():
            return _SURFACE_WORD_WEIGHT
        if ERROR_CODE_RE.match(body):
            return _CODE_WEIGHT
        if len(body) == 1:
            return _SINGLE_CHAR_WEIGHT
    return _KIND_WEIGHT[kind]


def _ignorable_oov(term: str) -> bool:
    """Unknown query terms that say nothing about the topic."""
    if term[0] != "w":
        return False
    body = term[2:]
    # A synonym surface is represented by its concept; a model or serial number (AS-C3H,
    # 2023a) the KB never mentions identifies a device, not a question.
    return body in synonyms() or _MODEL_RE.match(body) is not None


class KbIndex:
    """Searchable index of KB entries; build once, query many times (thread-safe reads)."""

    def __init__(self) -> None:
        self._docs: list[KbDoc] = []
        self._term_id: dict[str, int] = {}
        self._wsq: list[float] = []  # squared weight per term id
        self._df: list[int] = []
        self._post: list[array] = []  # term id -> phrasing ids
        self._ph_terms: list[array] = []  # sorted term ids; arrays keep 100k KBs compact
        self._ph_norm: list[float] = []
        self._ph_doc: array = array("I")
        self._doc_profile: array = array("I")  # entry -> its profile phrasing (all terms)
        self._ph_factor: list[float] = []
        self._oov_wsq: dict[str, float] = {}
        self._apost: list[array] = []  # term id -> profile ids whose answer alone has it
        self._ph_ans: dict[int, array] = {}  # profile id -> sorted answer-only term ids
        self._core: bytearray = bytearray()  # term id -> 1 for concepts and words (no bigrams)
        self._doc_core_sq: array = array("d")  # entry -> summed core weight of its phrasings
        self._doc_types: bytearray = bytearray()  # entry -> device-type bit mask (devices.py)

    @classmethod
    def build(cls, docs: Iterable[KbDoc]) -> KbIndex:
        """Build an index from KB entries."""
        self = cls()
        per_doc: list[list[set[str]]] = []
        per_ans: list[set[str]] = []
        df: dict[str, int] = {}
        for doc in docs:
            q_terms = analyze(doc.question) if doc.question else None
            alt_terms = [analyze(t) for t in doc.alternates if t]
            phrasings = [t.all() for t in ([q_terms] if q_terms else []) + alt_terms]
            profile: set[str] = set().union(*phrasings) if phrasings else set()
            tag_concepts: set[str] = set()
            for tag in doc.tags:
                tag_terms = analyze(tag)
                profile |= tag_terms.all()
                tag_concepts.update(tag_terms.concepts)
            answer_terms = analyze(doc.answer)
            answer = {t for t in answer_terms.all() if t[0] in _ANSWER_KINDS} - profile
            self._doc_types.append(
                entry_types(
                    q_terms.concepts if q_terms else (),
                    [t.concepts for t in alt_terms],
                    tag_concepts,
                    answer_terms.concepts,
                )
            )
            self._docs.append(doc)
            per_doc.append([*phrasings, profile])
            per_ans.append(answer)
            for term in profile | answer:
                df[term] = df.get(term, 0) + 1
        n = max(len(self._docs), 1)
        max_idf = 0.0
        for term, count in df.items():
            idf = math.log(1.0 + (n - count + 0.5) / (count + 0.5))
            w = _kind_weight(term) * idf
            self._term_id[term] = len(self._wsq)
            self._wsq.append(w * w)
            self._df.append(count)
            max_idf = max(max_idf, idf)
        rare_idf = math.log(1.0 + (n - 0.5) / 1.5)
        self._oov_idf = _OOV_FACTOR * rare_idf
        self._core = bytearray(1 if t[0] != "b" else 0 for t in self._term_id)
        posts: list[list[int]] = [[] for _ in self._wsq]
        aposts: list[list[int]] = [[] for _ in self._wsq]
        for d, sets in enumerate(per_doc):
            last = len(sets) - 1
            core_sq = 0.0
            for i, terms in enumerate(sets):
                if not terms:
                    continue
                ids = sorted(self._term_id[t] for t in terms)
                pid = len(self._ph_terms)
                self._ph_terms.append(array("I", ids))
                sq = sum(self._wsq[t] for t in ids) or 1.0
                exp = _PROFILE_NORM_EXP if i == last else 1.0 - _Q_EXP
                self._ph_norm.append(sq**exp)
                self._ph_doc.append(d)
                self._ph_factor.append(_PROFILE_FACTOR if i == last else 1.0)
                if i == last:
                    self._doc_profile.append(pid)
                else:
                    core_sq += sum(self._wsq[t] for t in ids if self._core[t])
                for t in ids:
                    posts[t].append(pid)
                if i == last and per_ans[d]:
                    aids = sorted(self._term_id[t] for t in per_ans[d])
                    self._ph_ans[pid] = array("I", aids)
                    for t in aids:
                        aposts[t].append(pid)
            self._doc_core_sq.append(core_sq)
        self._post = [array("I", p) for p in posts]
        self._apost = [array("I", p) for p in aposts]
        return self

    def __len__(self) -> int:
        return len(self._docs)

    def has_word(self, word: str) -> bool:
        """True if ``word`` (as segmented) occurs in some KB entry."""
        return ("w:" + word) in self._term_id

    def device_types(self, row: int) -> frozenset[str]:
        """Types entry ``row`` is specifically about (empty for generic entries)."""
        return type_names(self._doc_types[row])

    def shares_concept(self, row: int, concepts: Iterable[str]) -> bool:
        """True if entry ``row`` (question, alternates, tags or answer) has one of ``concepts``."""
        terms = self._ph_terms[self._doc_profile[row]]
        for concept in concepts:
            t = self._term_id.get("c:" + concept)
            if t is not None:
                i = bisect_left(terms, t)
                if i < len(terms) and terms[i] == t:
                    return True
        return False

    def match(self, terms: Terms, audiences: frozenset[str], limit: int = 3) -> list[Match]:
        """Rank entries visible to ``audiences`` by raw similarity to ``terms``."""
        tid = self._term_id
        wsq = self._wsq
        q_known: list[int] = []
        q_norm_sq = 0.0
        for term in terms.all():
            t = tid.get(term)
            if t is None:
                if _ignorable_oov(term):
                    continue
                w = _kind_weight(term) * self._oov_idf
                q_norm_sq += w * w
            else:
                q_known.append(t)
                q_norm_sq += wsq[t]
        if not q_known or q_norm_sq <= 0.0:
            return []
        q_norm = q_norm_sq**_Q_EXP
        q_all = tuple(q_known)
        # df counts answers too, so it bounds both posting lists of a term.
        q_known.sort(key=lambda t: self._df[t])
        acc: dict[int, float] = {}
        read = 0
        complete = True
        rescore = _RESCORE
        if len(self._post[q_known[0]]) > _POSTING_BUDGET and len(q_known) > 1:
            # Even the rarest word is everywhere (a vague "摄像头没反应" in a huge KB): only
            # entries sharing the two rarest terms can be good matches.
            both = set(self._post[q_known[0]]).intersection(self._post[q_known[1]])
            acc = dict.fromkeys(list(both)[: _RESCORE * 4], 0.0)
            rescore = len(acc)
            read = _POSTING_BUDGET
            complete = False
            q_known = []
        for t in q_known:
            post = self._post[t]
            apost = self._apost[t]
            if read and read + len(post) + len(apost) > _POSTING_BUDGET:
                complete = False
                break
            read += len(post) + len(apost)
            w = wsq[t]
            get = acc.get
            for pid in post:
                acc[pid] = get(pid, 0.0) + w
            w *= _ANSWER_WEIGHT
            for pid in apost:
                acc[pid] = get(pid, 0.0) + w
        if not acc:
            return []
        norms = self._ph_norm
        factor = self._ph_factor
        if complete:
            scored = [(dot / norms[pid] * factor[pid], pid) for pid, dot in acc.items()]
        else:
            # Partial sums only saw the rarer terms; rescore the best of them exactly.
            top = heapq.nlargest(rescore, acc.items(), key=lambda kv: kv[1] / norms[kv[0]])
            qset = set(q_all)
            scored = []
            for pid, _ in top:
                dot = sum(wsq[t] for t in qset.intersection(self._ph_terms[pid]))
                ans = self._ph_ans.get(pid)
                if ans is not None:
                    dot += _ANSWER_WEIGHT * sum(wsq[t] for t in qset.intersection(ans))
                scored.append((dot / norms[pid] * factor[pid], pid))
        scored.sort(reverse=True)
        best: dict[int, Match] = {}
        wanted = max(limit, _RERANK)
        qset = set(q_all)
        q_types = message_types(terms.concepts) if TYPE_PENALTY else 0
        types = self._doc_types
        for s, pid in scored:
            d = self._ph_doc[pid]
            if d in best:
                continue
            doc = self._docs[d]
            if doc.audience not in audiences:
                continue
            cov = s * norms[pid] / factor[pid] / q_norm_sq
            sim, touched = s / q_norm, self._touched(d, qset)
            evidence = _evidence(sim, touched)
            mismatch = conflicts(q_types, types[d])
            if mismatch:
                evidence *= _MISMATCH_FACTOR
            best[d] = Match(doc, sim, cov, d, touched, evidence, mismatch)
            if len(best) >= wanted:
                break
        return sorted(best.values(), key=lambda m: m.evidence, reverse=True)[:limit]

    def _touched(self, row: int, qset: set[int]) -> float:
        """Share of entry ``row``'s question/alternates core weight that the query's terms hit."""
        total = self._doc_core_sq[row]
        if total <= 0.0:
            return 0.0
        prof = self._doc_profile[row]
        first = self._doc_profile[row - 1] + 1 if row else 0
        wsq, core = self._wsq, self._core
        hit = 0.0
        for pid in range(first, prof):
            for t in self._ph_terms[pid]:
                if t in qset and core[t]:
                    hit += wsq[t]
        return hit / total

    def search(self, text: str, audiences: frozenset[str], limit: int = 3) -> list[Candidate]:
        """Best entries for ``text`` visible to ``audiences``, with calibrated scores."""
        matches = self.match(analyze(text), audiences, limit=max(limit, 2))
        return calibrate(matches)[:limit]
