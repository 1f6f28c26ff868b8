"""Score kefu.nlu.understand() on a KB jsonl and a labelled questions jsonl.

Usage: python benchmarks/nlu_accuracy.py [KB.jsonl] [QUESTIONS.jsonl]
                                         [--audience all|end_user|installer] [-q]

Prints per-class figures (in-scope: correct / wrong / clarified / none / handoff; out-of-scope:
kept out; handoff: handed off) and lists every miss. The KB entry's own audience decides
nothing here: by default the asker may see all three audiences, because the labelled set
mixes end-user and installer questions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.nlu import KbDoc, KbIndex, Understanding, understand  # noqa: E402
from kefu.nlu import index as index_module  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
AUDIENCES = {
    "all": frozenset({"all", "end_user", "installer"}),
    "end_user": frozenset({"all", "end_user"}),
    "installer": frozenset({"all", "installer"}),
}


def load_kb(path: Path) -> list[KbDoc]:
    """Read KB entries from a jsonl file."""
    docs = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                docs.append(
                    KbDoc(
                        id=d["id"],
                        question=d["question"],
                        alternates=tuple(d.get("alternates", ())),
                        audience=d.get("audience", "all"),
                        tags=tuple(d.get("tags", ())),
                        answer=d.get("answer", ""),
                    )
                )
    return docs


def outcome(u: Understanding) -> str:
    """Reduce an Understanding to the label space of the eval: KB id, none, human, clarify."""
    if u.kind == "answer":
        return u.candidates[0].id
    if u.kind == "handoff":
        return "human"
    if u.kind == "clarify":
        return "clarify"
    return "none"


def pct(a: int, b: int) -> str:
    """Format a/b as a percentage."""
    return f"{a}/{b} = {100.0 * a / b:5.1f}%" if b else "0/0"


def main(argv: list[str] | None = None) -> int:
    """Run the scorer and print the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kb", nargs="?", default=str(DEFAULT_DIR / "kb_dev.jsonl"))
    ap.add_argument("questions", nargs="?", default=str(DEFAULT_DIR / "questions_dev.jsonl"))
    ap.add_argument("--audience", choices=sorted(AUDIENCES), default="all")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not list the misses")
    ap.add_argument("--no-type-penalty", action="store_true",
                    help="switch the device-type mismatch penalty off (to measure its effect)")
    args = ap.parse_args(argv)
    index_module.TYPE_PENALTY = not args.no_type_penalty

    t0 = time.perf_counter()
    index = KbIndex.build(load_kb(Path(args.kb)))
    build_s = time.perf_counter() - t0
    audiences = AUDIENCES[args.audience]
    kb_ids = {d.id for d in load_kb(Path(args.kb))}

    stats: dict[str, Counter[str]] = {"in": Counter(), "none": Counter(), "human": Counter()}
    misses: list[str] = []
    n_total = n_exact = 0
    with open(args.questions, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for row in rows:
        text, expect = row["text"], row["expect"]
        u = understand(text, index, audiences)
        got = outcome(u)
        n_total += 1
        n_exact += got == expect
        if expect == "none":
            cls = "none"
            key = "kept_out" if got in ("none", "clarify", "human") else "answered"
        elif expect == "human":
            cls = "human"
            if got == "human":
                key = "handed_off"
            else:
                key = got if got in ("none", "clarify") else "answered"
        else:
            cls = "in"
            if expect not in kb_ids:
                print(f"warning: expected id {expect!r} is not in the KB", file=sys.stderr)
            key = "correct" if got == expect else "wrong" if got in kb_ids else got
        stats[cls][key] += 1
        if got != expect:
            cands = ", ".join(f"{c.id}:{c.score:.2f}" for c in u.candidates)
            why = f" ({u.reason})" if u.reason else ""
            misses.append(f"  [{expect}] -> {u.kind}{why} [{cands}]  {text}")

    ins, none, human = stats["in"], stats["none"], stats["human"]
    n_in, n_none, n_human = sum(ins.values()), sum(none.values()), sum(human.values())
    print(f"KB entries: {len(index)}; messages: {n_total}; index build {build_s * 1000:.0f} ms")
    print(f"in-scope  ({n_in}):")
    for key in ("correct", "wrong", "clarify", "none", "human"):
        print(f"  {key:9} {pct(ins[key], n_in)}")
    print(f"out-of-scope ({n_none}):")
    print(f"  kept out  {pct(none['kept_out'], n_none)}   (answered: {none['answered']})")
    print(f"handoff ({n_human}):")
    print(
        f"  handed off {pct(human['handed_off'], n_human)}   (answered: {human['answered']}, "
        f"clarify: {human['clarify']}, none: {human['none']})"
    )
    print(f"overall exact match: {pct(n_exact, n_total)}")
    if misses and not args.quiet:
        print("misses:")
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
