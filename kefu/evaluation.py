"""One scorer for labelled messages, shared by ``flask kb eval``, the benchmarks and the tests.

A labelled message expects a KB entry id, ``"none"`` (out of scope: no KB answer may be given)
or ``"human"`` (a person must take over). What the bot did is reduced to a :class:`Result`, and
:class:`Scores` counts the issue's figures: answerable messages answered correctly and wrongly,
out-of-scope messages kept out, handoff messages handed off, and the share of answerable
messages where the right entry was offered in a numbered list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "STORIES",
    "TARGETS",
    "Case",
    "Result",
    "Scores",
    "in_story",
    "load_cases",
    "missing_ids",
]

# (figure, at least or at most, floor, goal): the floors every held-out KB must reach.
TARGETS: tuple[tuple[str, str, float, float], ...] = (
    ("correct", ">=", 0.90, 0.95),
    ("wrong", "<=", 0.03, 0.02),
    ("kept_out", ">=", 0.90, 0.95),
    ("handed_off", ">=", 0.93, 0.97),
)


@dataclass(frozen=True)
class Case:
    """A labelled message."""

    text: str
    expect: str  # a KB id, "none" or "human"


@dataclass(frozen=True)
class Result:
    """What the bot did with a message, reduced to what scoring needs."""

    kind: Literal["answer", "clarify", "none", "handoff"]
    entry_id: str | None = None
    choices: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def label(self) -> str:
        """The result in the label space: an entry id, "clarify", "none" or "human"."""
        if self.kind == "answer":
            return self.entry_id or "?"
        return {"handoff": "human"}.get(self.kind, self.kind)


# What people write before they ask: told inside one of these, a question is one clause of
# the message (benchmarks/nlu_accuracy.py --stories, tests/nlu/test_accuracy.py).
STORIES = (
    "我上个月在网上买的，装在老家给我爸妈用，他们年纪大了不太会弄，",
    "你好，打扰一下，我是老用户了，之前一直用得好好的，最近不知道怎么回事，",
    "早上起来发现的，孩子说昨天晚上就这样了，我也不懂这些，",
    "我已经试了好几种办法，网上也查了，说法都不一样，",
)


def in_story(text: str, n: int, long: bool = False) -> str:
    """The ``n``-th labelled message told after a story (the stories taken in turn).

    ``long``: after every story, twice over (over 200 characters, as a long post is).
    """
    if long:
        rotated = STORIES[n % len(STORIES) :] + STORIES[: n % len(STORIES)]
        return "".join(rotated) * 2 + text
    return STORIES[n % len(STORIES)] + text


def load_cases(path: Path) -> list[Case]:
    """Read JSON Lines of {"text", "expect"}; raise ValueError naming the first bad line."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            cases.append(Case(str(item["text"]), str(item["expect"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: bad line ({exc})") from exc
    return cases


def missing_ids(cases: Iterable[Case], kb_ids: Iterable[str]) -> list[str]:
    """Expected entry ids that are not in the KB (the wrong KB is being evaluated)."""
    known = set(kb_ids)
    return sorted({c.expect for c in cases if c.expect not in {"none", "human"}} - known)


@dataclass
class Scores:
    """Counts per class; ``add`` one (case, result) at a time."""

    answerable: int = 0
    correct: int = 0
    wrong: int = 0
    listed: int = 0  # a numbered list that contained the right entry
    clarified: int = 0  # any numbered list
    no_answer: int = 0
    handed_off_answerable: int = 0
    out_of_scope: int = 0
    kept_out: int = 0
    oos_handed_off: int = 0
    human: int = 0
    handed_off: int = 0
    human_answered: int = 0
    misses: list[tuple[Case, Result]] = field(default_factory=list)

    def add(self, case: Case, result: Result) -> None:
        """Count one message."""
        if case.expect == "none":
            self.out_of_scope += 1
            # A numbered list or a handoff gives no KB answer.
            self.kept_out += result.kind != "answer"
            self.oos_handed_off += result.kind == "handoff"
            ok = result.kind in {"none", "clarify"}
        elif case.expect == "human":
            self.human += 1
            self.handed_off += result.kind == "handoff"
            self.human_answered += result.kind == "answer"
            ok = result.kind == "handoff"
        else:
            self.answerable += 1
            ok = result.kind == "answer" and result.entry_id == case.expect
            self.correct += ok
            self.wrong += result.kind == "answer" and not ok
            self.clarified += result.kind == "clarify"
            self.listed += result.kind == "clarify" and case.expect in result.choices
            self.no_answer += result.kind == "none"
            self.handed_off_answerable += result.kind == "handoff"
        if not ok:
            self.misses.append((case, result))

    def __iadd__(self, other: Scores) -> Scores:
        for name in self.__dataclass_fields__:
            if name != "misses":
                setattr(self, name, getattr(self, name) + getattr(other, name))
        self.misses.extend(other.misses)
        return self

    def rate(self, figure: str) -> float | None:
        """One of the target figures as a share, None when its class is empty."""
        base = {
            "correct": self.answerable,
            "wrong": self.answerable,
            "listed": self.answerable,
            "kept_out": self.out_of_scope,
            "handed_off": self.human,
        }[figure]
        return getattr(self, figure) / base if base else None

    def meets_targets(self) -> bool:
        """True when every non-empty class reaches its floor."""
        for figure, op, floor, _goal in TARGETS:
            value = self.rate(figure)
            if value is not None and (value < floor if op == ">=" else value > floor):
                return False
        return True

    def summary(self) -> str:
        """One line: the five figures (used by the leave-one-KB-out table)."""

        def fmt(figure: str) -> str:
            value = self.rate(figure)
            return "   -  " if value is None else f"{100 * value:5.1f}%"

        return (
            f"correct {fmt('correct')}  wrong {fmt('wrong')}  kept out {fmt('kept_out')}  "
            f"handed off {fmt('handed_off')}  listed {fmt('listed')}"
        )

    def report(self) -> str:
        """Per-class counts and the targets, each marked met or missed."""

        def share(part: int, whole: int) -> str:
            return f"{part:4d}  {100 * part / whole:5.1f}%" if whole else "   -"

        def pct(figure: str) -> str:
            value = self.rate(figure)
            return "-" if value is None else f"{100 * value:.1f}%"

        lines = [f"answerable messages    {self.answerable}"]
        for name, value in (
            ("correct", self.correct),
            ("wrong", self.wrong),
            ("offered in a list", self.clarified),
            ("  right one listed", self.listed),
            ("no answer", self.no_answer),
            ("handed off", self.handed_off_answerable),
        ):
            lines.append(f"  {name:<20} {share(value, self.answerable)}")
        lines.append(f"out-of-scope messages  {self.out_of_scope}")
        lines.append(f"  {'kept out':<20} {share(self.kept_out, self.out_of_scope)}")
        lines.append(
            f"  {'  of which handed off':<20} {share(self.oos_handed_off, self.out_of_scope)}"
        )
        lines.append(f"handoff messages       {self.human}")
        lines.append(f"  {'handed off':<20} {share(self.handed_off, self.human)}")
        lines.append(f"  {'answered':<20} {share(self.human_answered, self.human)}")
        # The four figures on one line, in the form evaluation tooling reads.
        lines.append(
            "targets                "
            f"correct {pct('correct')}, wrong {pct('wrong')}, "
            f"out-of-scope without a KB answer {pct('kept_out')}, "
            f"handed off {pct('handed_off')}"
        )
        lines.append("against the targets (floor / goal):")
        for figure, op, floor, goal in TARGETS:
            value = self.rate(figure)
            if value is None:
                continue
            met = value >= floor if op == ">=" else value <= floor
            lines.append(
                f"  {figure:<11} {100 * value:5.1f}%   target {op} {100 * floor:.0f}% "
                f"(goal {100 * goal:.0f}%)  {'met' if met else 'NOT MET'}"
            )
        return "\n".join(lines)
