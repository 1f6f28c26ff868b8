"""Leave-one-KB-out evaluation: each KB is scored by a decision fitted without it.

Usage: python benchmarks/nlu_loko.py [--audience installer|end_user] [--misses KB] [--rules]
                                    [--unseen]

For every development KB (the two labelled pairs in ../shared/eval, the demo KB and the
project's test KBs) the decision is fitted on all the others (their labelled messages, plus
the phrasings of their entries asked against an index without that phrasing, and without that
entry, as answerable and out-of-scope examples; the semantic handoff margin from their labelled
messages), then the held-out KB is scored with the same
scorer ``flask kb eval`` uses (kefu/evaluation.py). KBs without labelled messages are scored
on their own held-out phrasings. The primary figure is the worst held-out KB.

``--rules`` scores the earlier rule-based matcher instead (nothing to fit), for comparison.
``--unseen`` also scores the product lines in ``benchmarks/data/kbs`` (routers, robot vacuums,
dashcams, smart home, access control, children's watches), which nothing is fitted on, with the
decision fitted on every development KB: what a maker installing kefu on day one would get.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.evaluation import Case, Scores, load_cases  # noqa: E402
from kefu.nlu import corpus  # noqa: E402
from kefu.nlu.decision import Calibrator, Sample, fit  # noqa: E402
from kefu.nlu.tuning import TUNING  # noqa: E402
from kefu.nlu.types import KbDoc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "eval"
ALL = frozenset({"all", "end_user", "installer"})
END_USER = frozenset({"all", "end_user"})


@dataclass
class Dataset:
    """A development KB with its labelled messages (possibly none)."""

    name: str
    docs: list[KbDoc]
    cases: list[Case]


def datasets() -> list[Dataset]:
    """Every development KB that is available here."""
    out = []
    pairs = [
        (
            "dev",
            SHARED / "kb_dev.jsonl",
            [
                SHARED / "questions_dev.jsonl",
                ROOT / "benchmarks/data/questions_blind.jsonl",
                ROOT / "tests/nlu/data/questions_extra.jsonl",
                ROOT / "tests/nlu/data/questions_holdout.jsonl",
            ],
        ),
        ("locks", SHARED / "kb_locks.jsonl", [SHARED / "questions_locks.jsonl"]),
        ("demo", ROOT / "kefu/demo/kb.jsonl", []),
        ("test", ROOT / "tests/data/kb_test.jsonl", []),
        ("extra", ROOT / "tests/nlu/data/kb_extra.jsonl", []),
    ]
    for name, kb_path, question_paths in pairs:
        if not kb_path.exists():
            continue
        cases = [c for p in question_paths if p.exists() for c in load_cases(p)]
        out.append(Dataset(name, corpus.load_docs(kb_path), cases))
    return out


UNSEEN = ROOT / "benchmarks/data/kbs"


def unseen_datasets() -> list[Dataset]:
    """Product lines never used to fit or tune anything (``benchmarks/data/kbs/<name>/``)."""
    out = []
    for folder in sorted(p for p in UNSEEN.iterdir() if p.is_dir()):
        kb_path, questions = folder / "kb.jsonl", folder / "questions.jsonl"
        if kb_path.exists() and questions.exists():
            out.append(Dataset(folder.name, corpus.load_docs(kb_path), load_cases(questions)))
    return out


def score_rules(ds: Dataset, audiences: frozenset[str]) -> Scores:
    """The rule-based matcher (kefu.nlu.rules) on one KB."""
    from kefu.nlu.index import KbIndex
    from kefu.nlu.understand import understand_rules

    scores = Scores()
    if ds.cases:
        pairs = [(c, ds.docs) for c in ds.cases]
    else:
        cases, variants = corpus.phrasing_cases(ds.docs)
        pairs = list(zip(cases, variants, strict=True))
    built: dict[int, KbIndex] = {}
    for case, docs in pairs:
        if id(docs) not in built:
            built[id(docs)] = KbIndex.build(docs)
        u = understand_rules(case.text, built[id(docs)], audiences)
        scores.add(case, corpus.to_result(u))
    return scores


def fit_on(
    names: list[str],
    samples: dict[str, list[Sample]],
    handoffs: dict[str, list[corpus.HandoffCase]],
    clauses: dict[str, list[corpus.ClauseCase]],
    label: str,
) -> Calibrator:
    """The decision, semantic handoff margin and clause threshold fitted on the KBs ``names``."""
    cal: Calibrator = fit([s for n in names for s in samples[n]], TUNING, label=label)
    margin = corpus.fit_handoff([h for n in names for h in handoffs[n]], cal, TUNING)
    cal = dataclasses.replace(cal, handoff_margin=margin)
    threshold = corpus.fit_clause([c for n in names for c in clauses[n]], cal, TUNING)
    return dataclasses.replace(cal, clause_threshold=threshold)


def print_misses(scores: Scores) -> None:
    """Every message of a KB the bot got wrong, with what it did instead."""
    for case, res in scores.misses:
        print(f"    [{case.expect}] -> {res.label} {res.reason or ''} {res.choices}  {case.text}")


def main(argv: list[str] | None = None) -> int:
    """Fit on all but one KB, score that one; print a table and the worst figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audience", choices=["installer", "end_user"], default="installer")
    ap.add_argument("--misses", default="", help="list the misses of this KB")
    ap.add_argument("--rules", action="store_true", help="score the rule-based matcher")
    ap.add_argument(
        "--unseen",
        action="store_true",
        help="also score the product lines in benchmarks/data/kbs with the decision fitted on "
        "every development KB (none of them is ever fitted on)",
    )
    args = ap.parse_args(argv)
    audiences = ALL if args.audience == "installer" else END_USER
    sets = datasets()
    t0 = time.perf_counter()
    samples = {} if args.rules else {ds.name: corpus.samples(ds.docs, ds.cases) for ds in sets}
    handoffs = {ds.name: corpus.handoff_cases(ds.docs, ds.cases) for ds in sets if not args.rules}
    clauses = {ds.name: corpus.clause_cases(ds.docs, ds.cases) for ds in sets if not args.rules}
    print(f"fit data prepared in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results: dict[str, Scores] = {}
    for ds in sets:
        if args.rules:
            scores = score_rules(ds, audiences)
        else:
            others = [other.name for other in sets if other.name != ds.name]
            cal = fit_on(others, samples, handoffs, clauses, label=f"without {ds.name}")
            print(
                f"{ds.name:6} semantic handoff margin {cal.handoff_margin:.4f}, "
                f"clause threshold {cal.clause_threshold:.3f}",
                file=sys.stderr,
            )
            scores = corpus.score(ds.docs, ds.cases, cal, audiences)
        results[ds.name] = scores
        kind = "labelled" if ds.cases else "phrasings"
        print(f"{ds.name:6} ({kind:9}) {scores.summary()}")
        if args.misses == ds.name:
            print_misses(scores)
    unseen: list[Dataset] = []
    if args.unseen and not args.rules:
        names = [ds.name for ds in sets]
        cal = fit_on(names, samples, handoffs, clauses, label="all development KBs")
        unseen = unseen_datasets()
        for ds in unseen:
            scores = corpus.score(ds.docs, ds.cases, cal, audiences)
            results[ds.name] = scores
            print(f"{ds.name:6} (unseen   ) {scores.summary()}")
            if args.misses == ds.name:
                print_misses(scores)
    labelled = [results[ds.name] for ds in sets if ds.cases]
    groups = [("labelled development KBs", labelled)]
    if unseen:
        groups.append(("unseen product lines", [results[ds.name] for ds in unseen]))
    groups.append(("all KBs", list(results.values())))
    for title, group in groups:
        worst = {
            f: (max if f == "wrong" else min)(
                (s.rate(f) for s in group if s.rate(f) is not None), default=None
            )
            for f in ("correct", "wrong", "kept_out", "handed_off", "listed")
        }
        line = "  ".join(f"{f} {'-' if v is None else f'{100 * v:.1f}%'}" for f, v in worst.items())
        print(f"worst over {title}: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
