"""Fit the shipped decision (kefu/nlu/calibration.json) on every development KB pooled.

Usage: python benchmarks/nlu_fit.py [--check]

The same fit that benchmarks/nlu_loko.py validates with one KB held out, here on all of them
(the decision and the semantic handoff margin; also saves the embedded handoff examples,
kefu/nlu/handoff_prototypes.npz).
``--check`` prints the fitted numbers without writing the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu_loko import datasets  # noqa: E402

from kefu.nlu import corpus  # noqa: E402
from kefu.nlu.decision import FEATURES, default_calibrator, fit  # noqa: E402
from kefu.nlu.handoff import save_prototypes  # noqa: E402
from kefu.nlu.tuning import TUNING  # noqa: E402

TARGET = Path(__file__).resolve().parents[1] / "kefu" / "nlu" / "calibration.json"


def main(argv: list[str] | None = None) -> int:
    """Fit on all development KBs and write the calibration file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="print only, do not write")
    ap.add_argument(
        "--handoff-only",
        action="store_true",
        help="keep the shipped decision, refit only the semantic handoff margin for it",
    )
    args = ap.parse_args(argv)
    sets = datasets()
    pooled = (
        [] if args.handoff_only else [s for ds in sets for s in corpus.samples(ds.docs, ds.cases)]
    )
    cal = (
        default_calibrator()
        if args.handoff_only
        else fit(pooled, TUNING, label="pooled: " + ", ".join(ds.name for ds in sets))
    )
    handoffs = [h for ds in sets for h in corpus.handoff_cases(ds.docs, ds.cases)]
    cal = dataclasses.replace(cal, handoff_margin=corpus.fit_handoff(handoffs, cal, TUNING))
    clauses = [c for ds in sets for c in corpus.clause_cases(ds.docs, ds.cases)]
    cal = dataclasses.replace(cal, clause_threshold=corpus.fit_clause(clauses, cal, TUNING))
    for name, w in zip(FEATURES, cal.weights, strict=True):
        print(f"  {name:<14} {w:+.3f}")
    print(
        f"answer threshold {cal.answer_threshold:.3f}; list threshold {cal.list_threshold:.3f}"
        f" ({len(pooled)} samples); semantic handoff margin {cal.handoff_margin:.4f}"
        f" ({len(handoffs)} labelled messages); clause threshold {cal.clause_threshold:.3f}"
    )
    if not args.check:
        TARGET.write_text(cal.to_json(), encoding="utf-8")
        print(f"wrote {TARGET}")
        # The example sentences of the semantic handoff detector, embedded once for every worker.
        save_prototypes()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
