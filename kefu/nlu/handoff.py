"""Handoff triggers: asking for a person, anger, security-sensitive requests.

Two detectors. The lexical one reads phrase lists (handoff_{security,angry,requested}.txt):
exact, cheap, and it runs before anything else. The semantic one, asked only about messages
the KB does not answer (kefu.nlu.understand), compares the message's sentence embedding with
example sentences of each reason and with contrast examples of ordinary questions and chatter
(handoff_prototypes.txt): it recognises the same meanings in wordings no list anticipates. It
hands off only when the closest handoff examples are closer than the closest contrast
examples, and than the KB's own phrasings, by a margin fitted on the development KBs
(``fit_margin``, stored in calibration.json).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import dense
from .prep import mandarin, prepare, simplified
from .text import compact, load_lexicon, normalize

__all__ = [
    "CONTRAST_GROUPS",
    "HANDOFF_REASONS",
    "SemanticScore",
    "agitated",
    "detect_handoff",
    "fit_margin",
    "group_similarity",
    "prototypes",
    "save_prototypes",
    "semantic_handoff",
    "semantic_score",
]

# Checked in this order: a security request must reach a person even when it is also
# phrased as a request for one, and an angry customer outranks a polite "转人工".
HANDOFF_REASONS: tuple[tuple[str, str], ...] = (
    ("security", "handoff_security.txt"),
    ("angry", "handoff_angry.txt"),
    ("requested", "handoff_requested.txt"),
)
# Prototype groups that argue against a handoff: questions the KB answers, and chatter.
CONTRAST_GROUPS = ("howto", "chatter")
# The similarity of a message to a group is the mean of its closest few examples: one
# accidental neighbour counts less than a neighbourhood.
NEIGHBOURS = 2
_VECTORS = Path(__file__).with_name("handoff_prototypes.npz")


def _matchable(text: str) -> str:
    """The form the phrase lists are matched against."""
    # Traditional characters are converted first, so one pattern serves every script.
    return compact(normalize(simplified(text)))


def detect_handoff(text: str, kb_word: Callable[[str], bool] | None = None) -> str | None:
    """Return "security", "angry" or "requested" if the message needs a person, else None.

    ``kb_word`` tells which words the knowledge base itself uses (``HybridIndex.uses_word``).
    A complaint word that is one of them is the product's vocabulary, not an insult: a robot
    vacuum picks up 垃圾, so there "垃圾盒满了" is a question and only the list's patterns
    ("什么垃圾", "垃圾产品") are a complaint.
    """
    simple = simplified(text)
    norm = compact(normalize(simple))
    if not norm:
        return None
    # Written Cantonese is also read as standard Chinese ("有冇人可以打俾我" is
    # "有没有人可以打给我"), so the lists need no Cantonese twin of every phrasing.
    forms = dict.fromkeys([norm, compact(normalize(mandarin(simple)))])
    for reason, name in HANDOFF_REASONS:
        ordinary = kb_word if reason == "angry" else None
        if any(load_lexicon(name).find(form, ordinary) is not None for form in forms):
            return reason
    return None


def agitated(text: str) -> bool:
    """True if the message's tone is agitated (handoff_tone.txt), whatever it says."""
    return load_lexicon("handoff_tone.txt").find(_matchable(text)) is not None


def _prototype_lines() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    text = resources.files(__package__).joinpath("handoff_prototypes.txt").read_text("utf-8")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = groups.setdefault(line[1:-1].strip(), [])
        elif current is not None:
            current.append(line)
    return groups


def _prototype_key() -> str:
    """Identifies the example sentences and the model that embedded them."""
    text = resources.files(__package__).joinpath("handoff_prototypes.txt").read_bytes()
    return hashlib.sha256(dense.MODEL.encode() + b"\0" + text).hexdigest()


def embed_prototypes() -> dict[str, np.ndarray]:
    """Embed every example sentence (about 40 ms each: done once, by ``save_prototypes``)."""
    model = dense.embedder()
    out: dict[str, np.ndarray] = {}
    for group, lines in _prototype_lines().items():
        texts = [p for p in (prepare(line) for line in lines) if p]
        vecs = np.asarray(model.query(texts), dtype=np.float32)
        out[group] = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return out


def save_prototypes(path: Path = _VECTORS) -> None:
    """Write the example embeddings next to the sentences, so workers need not embed them."""
    arrays = {group: vecs.astype(np.float16) for group, vecs in embed_prototypes().items()}
    with path.open("wb") as fh:
        np.savez(fh, _key=np.array(_prototype_key()), **arrays)


@cache
def prototypes() -> dict[str, np.ndarray]:
    """Unit embeddings of the example sentences, one matrix per group.

    Read from the saved file when it was made from these sentences with this model, else
    embedded here (a few seconds, once per process).
    """
    out: dict[str, np.ndarray] | None = None
    try:
        with np.load(_VECTORS) as saved:
            if str(saved["_key"]) == _prototype_key():
                out = {k: saved[k].astype(np.float32) for k in saved.files if k != "_key"}
    except (OSError, KeyError, ValueError):
        out = None
    if out is None:
        out = embed_prototypes()
    for vecs in out.values():
        vecs.setflags(write=False)
    return out


class SemanticScore(NamedTuple):
    """How close one message is to the nearest handoff reason and to ordinary questions."""

    reason: str
    handoff: float  # similarity to the closest handoff group
    contrast: float  # similarity to the closest contrast group

    @property
    def margin(self) -> float:
        """How much closer the message is to a handoff group than to any contrast group."""
        return self.handoff - self.contrast


def group_similarity(vecs: np.ndarray, vector: np.ndarray) -> float:
    """Similarity of ``vector`` to a group of unit vectors: the mean of its ``NEIGHBOURS`` best."""
    sims = vecs @ vector
    k = min(NEIGHBOURS, len(sims))
    return float(np.sort(sims)[-k:].mean()) if k else -1.0


def semantic_score(vector: np.ndarray, kb_similarity: float = -1.0) -> SemanticScore:
    """Similarity of a message embedding (``dense.embed(..., query=True)``) to the groups.

    ``kb_similarity`` is how close the message is to the knowledge base's own phrasings
    (``HybridIndex.kb_similarity``): they are contrast examples too, the ordinary questions of
    this product line. A husband who wants the vacuum on his phone too sounds like someone
    else's account to the shipped examples, but the vacuum KB's sharing entry is right next to it.
    """
    protos = prototypes()
    v = np.asarray(vector, dtype=np.float32)
    by_reason = {r: group_similarity(protos[r], v) for r, _ in HANDOFF_REASONS if r in protos}
    reason = max(by_reason, key=by_reason.__getitem__)
    contrast = max(group_similarity(protos[g], v) for g in CONTRAST_GROUPS if g in protos)
    return SemanticScore(reason, by_reason[reason], max(contrast, kb_similarity))


def semantic_handoff(vector: np.ndarray, margin: float, kb_similarity: float = -1.0) -> str | None:
    """The reason to hand off if the message is ``margin`` closer to a handoff group than to
    any contrast group and to the KB's own phrasings."""
    score = semantic_score(vector, kb_similarity)
    return score.reason if score.margin >= margin else None


def fit_margin(
    positives: Sequence[float], negatives: Sequence[float], false_budget: float
) -> float:
    """The lowest margin that hands off at most ``false_budget`` of the negatives.

    ``negatives`` are the margins of labelled messages that need no person and that the
    detector would be asked about (the lists miss them, the KB does not answer them);
    ``positives`` those of messages that need a person. The margin is placed halfway between
    the last negative it must exclude and the next margin above it, so that it does not sit
    on a development message. Without negatives nothing is fitted and the detector stays off.
    """
    neg = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    if len(neg) == 0:
        return 2.0
    allowed = int(np.floor(false_budget * len(neg)))
    # Everything above neg[allowed] may be handed off: at most ``allowed`` negatives are.
    bound = float(neg[min(allowed, len(neg) - 1)])
    above = [m for m in [*positives, *neg.tolist()] if m > bound]
    return (bound + min(above)) / 2.0 if above else bound + 1e-6
