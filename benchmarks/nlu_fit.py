"""Fit the shipped decision (kefu/nlu/calibration.json) on every development KB pooled.

Usage: python benchmarks/nlu_fit.py [--check]

The same fit that benchmarks/nlu_loko.py validates with one KB held out, here on all of them.
``--check`` prints the fitted numbers without writing the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu_loko import datasets  # noqa: E402

from kefu.nlu import corpus  # noqa: E402
from kefu.nlu.decision import FEATURES, fit  # noqa: E402
from kefu.nlu.tuning import TUNING  # noqa: E402

TARGET = Path(__file__).resolve().parents[1] / "kefu" / "nlu" / "calibration.json"


def main(argv: list[str] | None = None) -> int:
    """Fit on all development KBs and write the calibration file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="print only, do not write")
    args = ap.parse_args(argv)
    sets = datasets()
    pooled = [s for ds in sets for s in corpus.samples(ds.docs, ds.cases)]
    cal = fit(pooled, TUNING, label="pooled: " + ", ".join(ds.name for ds in sets))
    for name, w in zip(FEATURES, cal.weights, strict=True):
        print(f"  {name:<14} {w:+.3f}")
    print(
        f"answer threshold {cal.answer_threshold:.3f}; list threshold {cal.list_threshold:.3f}"
        f" ({len(pooled)} samples)"
    )
    if not args.check:
        TARGET.write_text(cal.to_json(), encoding="utf-8")
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
