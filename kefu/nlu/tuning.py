"""Every tuning number of the understanding layer, in one place.

These are method settings, not fitted to any labelled message: the textbook BM25 values, how
many candidates the decision looks at, and the error budget the fitted thresholds must keep.
The decision's weights and thresholds themselves come out of the fit in ``calibration.json``
(written by ``benchmarks/nlu_fit.py``, validated leave-one-KB-out by ``benchmarks/nlu_loko.py``).
Pass a modified copy (``dataclasses.replace(TUNING, ...)``) to measure another setting.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TUNING", "Tuning"]


@dataclass(frozen=True)
class Tuning:
    """Settings of retrieval and of the fit of the decision."""

    # BM25 saturation and length normalisation: the usual defaults (Robertson and Zaragoza).
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    # The answer text is a second, weaker field (BM25F): its words are often the user's
    # (指示灯, 红灯) but a long reply also names many incidental things.
    answer_weight: float = 0.3
    # Entries taken from each retriever (dense and lexical) before the decision ranks them.
    candidates: int = 8
    # From this many entries on, dense candidates are first picked in a reduced space: the
    # entry centroids projected on their leading principal directions (``coarse_dim`` of
    # them), a third of the bytes and arithmetic of the full matrix, which a large KB would
    # otherwise read whole for every message. ``coarse_widen`` times as many candidates are
    # taken from that estimate; their exact similarity comes from their own phrasing rows.
    coarse_min_entries: int = 20_000
    coarse_dim: int = 128
    coarse_widen: int = 2
    # The fit picks the lowest answer threshold whose wrong answers on the pooled development
    # data stay within this share of the answerable ones (2% is the goal, 3% the most tolerated).
    wrong_budget: float = 0.02
    # ... and whose answers to out-of-scope messages stay within this share of them.
    out_of_scope_budget: float = 0.03
    # A numbered list is offered when the best entry is below the answer threshold but the
    # right one was among the first three at least this often in the fit.
    list_precision: float = 0.6
    # ... and that lists, with answers, go to at most this share of out-of-scope messages.
    list_out_of_scope_budget: float = 0.15
    # Similarities are compared after removing the embeddings' common direction: "pooled"
    # (the KB's rows with the shipped background sentences), "background" (those only), "off".
    centre: str = "pooled"
    # A labelled user message counts this many times a KB phrasing in the fit: phrasings are
    # many and tidy, messages are how people really write.
    message_weight: float = 2.0
    # A word in at least this share of a KB's entries is what the KB is about: its own brand,
    # its product ("门锁" in a lock maker's KB). Another maker's product of that kind is out of
    # scope (``HybridIndex.foreign``); the same noun as a minor topic is only a setting.
    main_topic_share: float = 0.2
    # Ridge penalty of the logistic fit (on standardised features).
    ridge: float = 1.0
    # The semantic handoff margin is the lowest that hands off at most this share of the
    # development messages that need no person and that the KB does not answer.
    handoff_false_budget: float = 0.02


TUNING = Tuning()
