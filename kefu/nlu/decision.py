"""The learned decision: how likely a candidate entry is the answer, and when to answer.

A logistic model over a few retrieval features (dense and lexical similarity, each one's lead
over the runner-up) gives every candidate a probability of being the right entry. It is fitted
on pooled development data, and so are its two thresholds: the lowest probability at which
answering stays within the wrong-answer budget, and the lowest at which a numbered list still
usually contains the right entry. Nothing here is typed in by hand; see ``tuning.py`` for the
budget and ``benchmarks/nlu_fit.py`` for the fit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from .hybrid import Features
from .tuning import TUNING, Tuning

__all__ = ["Calibrator", "Sample", "default_calibrator", "fit", "vectorize"]

FEATURES = (
    "dense",
    "lexical",
    "dense_gap",
    "lexical_gap",
    "dense_first",
    "lexical_first",
    "agree",
    "cover",
    "cover_gap",
    "sibling",
    "sibling_gap",
    "foreign",
)


def vectorize(f: Features) -> list[float]:
    """The feature vector of one candidate, in the order of ``FEATURES``."""
    return [
        f.dense,
        f.lexical,
        f.dense_gap,
        f.lexical_gap,
        float(f.dense_first),
        float(f.lexical_first),
        float(f.dense_first and f.lexical_first),
        f.cover,
        f.cover_gap,
        f.sibling,
        # A lead over a near-duplicate sibling means less than the same lead over a stranger.
        f.dense_gap * f.sibling,
        float(f.foreign),
    ]


@dataclass(frozen=True)
class Sample:
    """One labelled message: its candidates and which of them is right (None: none is)."""

    candidates: tuple[Features, ...]
    right_row: int | None
    # How much the sample counts in the fit (see ``Tuning.message_weight``).
    weight: float = 1.0


@dataclass(frozen=True)
class Calibrator:
    """Fitted weights (on standardised features) and the two fitted thresholds."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    answer_threshold: float
    list_threshold: float
    fitted_on: str = ""
    # How much closer to a handoff example than to any ordinary question a message the KB
    # does not answer must be to go to a person (kefu.nlu.handoff; above any cosine gap:
    # the semantic detector is off until fitted).
    handoff_margin: float = 2.0
    # The probability a clause of a long message (kefu.nlu.understand.clause_views) needs for
    # its answer to be given when the whole message got none; fitted like the answer
    # threshold on what the whole messages left of the budgets (above 1: clauses are off).
    clause_threshold: float = 1.01

    def probabilities(self, cands: Sequence[Features]) -> np.ndarray:
        """Probability that each candidate is the right entry (the rest: that none is)."""
        if not cands:
            return np.zeros(0)
        x = (np.array([vectorize(c) for c in cands]) - self.mean) / self.scale
        e = np.exp(np.clip(x @ np.array(self.weights) + self.bias, -50, 50))
        return e / (1.0 + e.sum())

    def to_json(self) -> str:
        """Serialise (for calibration.json)."""
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Calibrator:
        """Read what :meth:`to_json` wrote."""
        d = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@cache
def default_calibrator() -> Calibrator:
    """The calibration shipped with the package (fitted on all development KBs)."""
    text = resources.files(__package__).joinpath("calibration.json").read_text(encoding="utf-8")
    return Calibrator.from_json(text)


def _choice_model(groups: list[tuple[np.ndarray, int | None, float]], ridge: float) -> np.ndarray:
    """Conditional logit with a "none of them" option of utility 0, by damped Newton steps.

    Each group is one message: the feature rows of its candidates, the index of the right
    one (None when no candidate is right) and its weight. P(candidate) = exp(u) / (1 + sum exp(u)).
    """
    mats = [(np.hstack([x, np.ones((len(x), 1))]), right, wt) for x, right, wt in groups]
    k = mats[0][0].shape[1]
    reg = np.eye(k) * ridge

    def loss(w: np.ndarray) -> float:
        total = 0.5 * w @ reg @ w
        for xb, right, wt in mats:
            u = xb @ w
            top = max(float(u.max()), 0.0)
            nll = top + np.log(np.exp(-top) + np.exp(u - top).sum())
            total += wt * (nll - (u[right] if right is not None else 0.0))
        return float(total)

    w = np.zeros(k)
    current = loss(w)
    for _ in range(100):
        grad = reg @ w
        hess = reg.copy()
        for xb, right, wt in mats:
            u = np.clip(xb @ w, -50, 50)
            e = np.exp(u)
            p = e / (1.0 + e.sum())
            mean = p @ xb
            grad += wt * (mean - (xb[right] if right is not None else 0.0))
            hess += wt * ((xb * p[:, None]).T @ xb - np.outer(mean, mean))
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-4:
            trial = w - size * step
            value = loss(trial)
            if value <= current:
                break
            size /= 2
        w, improvement = trial, current - value
        current = value
        if improvement < 1e-9:
            break
    return w


def fit(samples: Sequence[Sample], tuning: Tuning = TUNING, label: str = "") -> Calibrator:
    """Fit weights and thresholds on labelled samples (answerable and out-of-scope together)."""
    used = [s for s in samples if s.candidates]
    x = np.array([vectorize(c) for s in used for c in s.candidates])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    groups = []
    for s in used:
        rows = [c.row for c in s.candidates]
        right = rows.index(s.right_row) if s.right_row in rows else None
        x_s = (np.array([vectorize(c) for c in s.candidates]) - mean) / scale
        groups.append((x_s, right, s.weight))
    coef = _choice_model(groups, tuning.ridge)
    w, b = tuple(float(v) for v in coef[:-1]), float(coef[-1])
    cal = Calibrator(w, b, tuple(mean.tolist()), tuple(scale.tolist()), 1.0, 1.0, label)
    answer_t, list_t = _thresholds(cal, used, tuning)
    return Calibrator(w, b, cal.mean, cal.scale, answer_t, list_t, label)


def _thresholds(cal: Calibrator, samples: Sequence[Sample], tuning: Tuning) -> tuple[float, float]:
    # best p, answerable, right, right in top 3, weight
    tops: list[tuple[float, bool, bool, bool, float]] = []
    for s in samples:
        if not s.candidates:
            continue
        p = cal.probabilities(s.candidates)
        order = np.argsort(-p)
        rows = [s.candidates[i].row for i in order[:3]]
        answerable = s.right_row is not None
        tops.append(
            (float(p[order[0]]), answerable, rows[0] == s.right_row, s.right_row in rows, s.weight)
        )
    n_ans = max(sum(wt for _, a, _, _, wt in tops if a), 1.0)
    n_oos = max(sum(wt for _, a, _, _, wt in tops if not a), 1.0)
    tops.sort(key=lambda t: t[0], reverse=True)
    # Walk down from the most confident: the threshold is the lowest probability at which the
    # answers given so far stay within both budgets: wrong answers to answerable messages, and
    # answers to out-of-scope ones.
    answer_t = 1.0
    wrong = oos = 0.0
    for p, answerable, right, _, wt in tops:
        wrong += wt * (answerable and not right)
        oos += wt * (not answerable)
        if wrong > tuning.wrong_budget * n_ans or oos > tuning.out_of_scope_budget * n_oos:
            break
        answer_t = p
    # Out-of-scope messages count against a list too ("晚上吃什么" gets no list): the list
    # threshold is the lowest probability at which all the lists it gives hold the right entry
    # often enough, and at which they go to few out-of-scope messages. The share is taken over
    # every list down to the threshold, so one miss among the first few does not end the walk.
    below = [(p, answerable, in3, wt) for p, answerable, _, in3, wt in tops if p < answer_t]
    list_t = answer_t
    hits = seen = listed_oos = 0.0
    for p, answerable, in3, wt in below:  # already most confident first
        hits += wt * in3
        seen += wt
        listed_oos += wt * (not answerable)
        if listed_oos > tuning.list_out_of_scope_budget * n_oos:
            break
        if hits >= tuning.list_precision * seen:
            list_t = p
    return answer_t, list_t


def save(cal: Calibrator, path: Path) -> None:
    """Write a calibration file."""
    path.write_text(cal.to_json(), encoding="utf-8")
