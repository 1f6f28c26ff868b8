"""Derive the answer/clarify calibration of kefu.nlu from KB phrasings alone.

Usage: python benchmarks/nlu_calibration.py KB.jsonl [KB.jsonl ...] [--questions Q.jsonl]

Leave-one-phrasing-out: for every entry with two or more phrasings, each phrasing in turn is
removed from its entry, the index is rebuilt without it, and the phrasing is asked as a
message. A held-out phrasing is a paraphrase the index has never seen, as a user message is.
For each query the top similarity s1, the best other entry's similarity s2 and whether the
top entry is the right one are recorded; the script then reports, for a grid of rules
"answer when s1 >= A and s2 <= R * s1", the share answered and the precision of that band,
and fits the logistic confidence used by kefu.nlu.calibration. Leave-one-entry-out supplies
the negatives: every phrasing of an entry is asked against an index built without that entry
(a near-domain question the KB does not answer), and must not be answered; the report shows
how often the current calibration answers those, split by Match.touched. With --questions it prints
the same features for a labelled message set (for inspection only, never for fitting).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.nlu import KbDoc, KbIndex, understand  # noqa: E402
from kefu.nlu import index as index_module  # noqa: E402
from kefu.nlu.calibration import ANSWER_CONFIDENCE, calibrate, confidence  # noqa: E402
from kefu.nlu.text import analyze  # noqa: E402

ALL = frozenset({"all", "end_user", "installer"})
# The module (the package re-exports its function under the same name): the sweep below moves
# its answer threshold.
understand_module = importlib.import_module("kefu.nlu.understand")


def load_kb(path: Path) -> list[KbDoc]:
    """Read KB entries from a jsonl file."""
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            docs.append(KbDoc(d["id"], d["question"], tuple(d.get("alternates", ())),
                              d.get("audience", "all"), tuple(d.get("tags", ())),
                              d.get("answer", "")))
    return docs


def features(index: KbIndex, text: str) -> tuple[str | None, float, float]:
    """Top entry id, its similarity and the best rival's similarity."""
    m = index.match(analyze(text), ALL, limit=3)
    if not m:
        return None, 0.0, 0.0
    return m[0].doc.id, m[0].similarity, (m[1].similarity if len(m) > 1 else 0.0)


def held_out_phrasings(docs: list[KbDoc]) -> Iterator[tuple[KbDoc, str, KbIndex]]:
    """Each phrasing of each entry, with an index built without that one phrasing."""
    for i, doc in enumerate(docs):
        phrasings = [doc.question, *doc.alternates]
        if len(phrasings) < 2:
            continue
        for j, held in enumerate(phrasings):
            rest = phrasings[:j] + phrasings[j + 1 :]
            reduced = replace(doc, question=rest[0], alternates=tuple(rest[1:]))
            yield doc, held, KbIndex.build([*docs[:i], reduced, *docs[i + 1 :]])


def leave_one_out(docs: list[KbDoc]) -> list[tuple[float, float, bool]]:
    """(s1, s2, top-1 correct) for every held-out phrasing."""
    rows = []
    for doc, held, index in held_out_phrasings(docs):
        top, s1, s2 = features(index, held)
        rows.append((s1, s2, top == doc.id))
    return rows


def answered(index: KbIndex, text: str) -> tuple[str | None, float]:
    """The entry the current calibration answers with (or None), and its coverage."""
    m = index.match(analyze(text), ALL, limit=3)
    if not m:
        return None, 0.0
    best = calibrate(m)[0]
    return (best.id if best.score >= ANSWER_CONFIDENCE else None), m[0].touched


def leave_entry_out(docs: list[KbDoc]) -> list[tuple[bool, float]]:
    """(answered, touched) for every phrasing asked against an index without its entry."""
    rows = []
    for i, doc in enumerate(docs):
        index = KbIndex.build([*docs[:i], *docs[i + 1 :]])
        for held in (doc.question, *doc.alternates):
            top, touched = answered(index, held)
            rows.append((top is not None, touched))
    return rows


def leave_phrasing_out_answers(docs: list[KbDoc]) -> list[bool | None]:
    """Per held-out phrasing: True answered right, False answered wrong, None not answered."""
    out: list[bool | None] = []
    for doc, held, index in held_out_phrasings(docs):
        top, _ = answered(index, held)
        out.append(None if top is None else top == doc.id)
    return out


def dialog_cases(docs: list[KbDoc]) -> list[tuple[KbIndex, str, str | None]]:
    """(index, message, right entry or None) for phrasing-out and entry-out, as above."""
    cases: list[tuple[KbIndex, str, str | None]] = []
    for i, doc in enumerate(docs):
        phrasings = [doc.question, *doc.alternates]
        if len(phrasings) >= 2:
            for j, held in enumerate(phrasings):
                rest = phrasings[:j] + phrasings[j + 1 :]
                reduced = replace(doc, question=rest[0], alternates=tuple(rest[1:]))
                cases.append((KbIndex.build([*docs[:i], reduced, *docs[i + 1 :]]), held, doc.id))
        index = KbIndex.build([*docs[:i], *docs[i + 1 :]])
        cases += [(index, held, None) for held in phrasings]
    return cases


def dialog_sweep(cases: list[tuple[KbIndex, str, str | None]], thresholds: list[float]) -> None:
    """What understand() itself does (all its rules, not only calibrate) per answer threshold."""
    print("\nunderstand() per answer threshold: phrasing-out right / wrong / clarify; "
          "entry-out answered / clarify")
    saved = understand_module.ANSWER_CONFIDENCE
    try:
        for thr in thresholds:
            understand_module.ANSWER_CONFIDENCE = thr
            pos = [0, 0, 0, 0]
            neg = [0, 0, 0]
            for index, text, right in cases:
                u = understand(text, index, ALL)
                got = u.candidates[0].id if u.kind == "answer" else None
                if right is None:
                    neg[0] += 1
                    neg[1] += got is not None
                    neg[2] += u.kind == "clarify"
                else:
                    pos[0] += 1
                    pos[1] += got == right
                    pos[2] += got is not None and got != right
                    pos[3] += u.kind == "clarify"
            print(f"  >= {thr:.2f}: phrasing-out {pos[1] / pos[0]:5.1%} / {pos[2] / pos[0]:4.1%}"
                  f" / {pos[3] / pos[0]:5.1%} (n={pos[0]}); entry-out {neg[1] / neg[0]:5.1%}"
                  f" / {neg[2] / neg[0]:5.1%} (n={neg[0]})")
    finally:
        understand_module.ANSWER_CONFIDENCE = saved


def fit_logistic(x: list[float], y: list[bool], steps: int = 20000) -> tuple[float, float]:
    """One-feature logistic regression by gradient descent: returns (slope, midpoint)."""
    a, b = 1.0, 0.0
    n = len(x)
    for _ in range(steps):
        ga = gb = 0.0
        for xi, yi in zip(x, y, strict=True):
            p = 1.0 / (1.0 + math.exp(-(a * xi + b)))
            ga += (p - yi) * xi
            gb += p - yi
        a -= 2.0 * ga / n
        b -= 2.0 * gb / n
    return a, -b / a


def main(argv: list[str] | None = None) -> int:
    """Run leave-one-phrasing-out over the given KBs and print the calibration report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kb", nargs="+")
    ap.add_argument("--questions")
    ap.add_argument("--rival", type=float, default=1.0, help="evidence = s1 - RIVAL * s2")
    ap.add_argument("--no-type-penalty", action="store_true",
                    help="switch the device-type mismatch penalty off (to measure its effect)")
    ap.add_argument("--sweep", default="0.3,0.4,0.5,0.6,0.7",
                    help="answer thresholds for the understand() sweep (comma-separated)")
    args = ap.parse_args(argv)
    index_module.TYPE_PENALTY = not args.no_type_penalty
    rows: list[tuple[float, float, bool]] = []
    for path in args.kb:
        part = leave_one_out(load_kb(Path(path)))
        print(f"{path}: {len(part)} held-out phrasings, top-1 right "
              f"{sum(r[2] for r in part)}")
        rows += part
    n = len(rows)
    print(f"\nrule: answer when s1 >= A and s2 <= R*s1   (answered share / precision), n={n}")
    ratios = (0.5, 0.6, 0.7, 0.8, 0.9)
    print("   A   " + "".join(f"   R={r:<10}" for r in ratios))
    for a in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
        cells = []
        for r in ratios:
            band = [ok for s1, s2, ok in rows if s1 >= a and s2 <= r * s1]
            prec = sum(band) / len(band) if band else 1.0
            cells.append(f"{len(band) / n:5.0%}/{prec:5.1%}")
        print(f"  {a:.2f} " + "".join(f"  {c:12}" for c in cells))
    ev = [s1 - args.rival * s2 for s1, s2, _ in rows]
    slope, mid = fit_logistic(ev, [ok for *_, ok in rows])
    print(f"\nlogistic fit on evidence = s1 - {args.rival}*s2: slope {slope:.2f}, "
          f"midpoint {mid:.3f}")
    for thr in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        band = [ok for e, (*_, ok) in zip(ev, rows, strict=True) if e >= thr]
        prec = sum(band) / len(band) if band else 1.0
        print(f"  evidence >= {thr:.2f}: answered {len(band) / n:5.0%} precision {prec:6.1%}")
    conf = [confidence(s1, s2) for s1, s2, _ in rows]
    band = [ok for c, (*_, ok) in zip(conf, rows, strict=True) if c >= ANSWER_CONFIDENCE]
    prec = sum(band) / len(band) if band else 1.0
    print(f"\nsimilarity/margin alone: answered {len(band) / n:.0%}, precision {prec:.1%}")
    pos: list[bool | None] = []
    neg: list[tuple[bool, float]] = []
    for path in args.kb:
        pos += leave_phrasing_out_answers(load_kb(Path(path)))
        neg += leave_entry_out(load_kb(Path(path)))
    right = sum(1 for x in pos if x is True)
    wrong = sum(1 for x in pos if x is False)
    print(f"current calibration (with coverage), phrasing-out: answered right "
          f"{right / len(pos):.0%}, wrong {wrong / len(pos):.1%}")
    print(f"entry-out (should stay unanswered): answered {sum(a for a, _ in neg) / len(neg):.0%}"
          f" of {len(neg)}")
    for lo, hi in ((0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.01)):
        band_neg = [a for a, t in neg if lo <= t < hi]
        if band_neg:
            print(f"  touched {lo:.1f}-{hi:.1f}: {len(band_neg):3} questions, answered "
                  f"{sum(band_neg) / len(band_neg):.0%}")
    cases = [c for path in args.kb for c in dialog_cases(load_kb(Path(path)))]
    dialog_sweep(cases, [float(x) for x in args.sweep.split(",")])
    if args.questions:
        docs = [d for p in args.kb for d in load_kb(Path(p))]
        index = KbIndex.build(docs)
        print("\nlabelled messages (inspection only): expect top s1 s2 conf")
        for line in Path(args.questions).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            top, s1, s2 = features(index, row["text"])
            mark = "ok " if top == row["expect"] else "BAD"
            print(f"  {mark} {row['expect']:22} {top!s:22} {s1:.3f} {s2:.3f} "
                  f"{confidence(s1, s2):.2f}  {row['text']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
