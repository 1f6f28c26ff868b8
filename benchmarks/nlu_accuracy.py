"""Score kefu.nlu.understand() on one KB file and one labelled questions file.

Usage: python benchmarks/nlu_accuracy.py [KB.jsonl] [QUESTIONS.jsonl]
                                         [--audience installer|end_user] [--stories]
                                         [--long-stories] [-q]

``--stories`` puts each message after a few clauses of story, as people write before they ask
("我上个月在网上买的，装在老家给我爸妈用，…" + the question), the way the accuracy test does;
``--long-stories`` after all of them twice, over 200 characters, as a long post runs.

The figures and targets are those of ``flask kb eval`` (kefu/evaluation.py), without the
database: a quick check of one pair. The decision is the shipped one, fitted on every
development KB, so a development pair scores higher here than held out; the held-out figures
come from benchmarks/nlu_loko.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.evaluation import Scores, in_story, load_cases, missing_ids  # noqa: E402
from kefu.nlu import HybridIndex, understand  # noqa: E402
from kefu.nlu.corpus import load_docs, to_result  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
AUDIENCES = {
    "installer": frozenset({"all", "end_user", "installer"}),
    "end_user": frozenset({"all", "end_user"}),
}


def main(argv: list[str] | None = None) -> int:
    """Run the scorer and print the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kb", nargs="?", default=str(DEFAULT_DIR / "kb_dev.jsonl"))
    ap.add_argument("questions", nargs="?", default=str(DEFAULT_DIR / "questions_dev.jsonl"))
    ap.add_argument("--audience", choices=sorted(AUDIENCES), default="installer")
    ap.add_argument("--stories", action="store_true", help="tell each message inside a story")
    ap.add_argument(
        "--long-stories", action="store_true", help="... inside a story of over 200 characters"
    )
    ap.add_argument("-q", "--quiet", action="store_true", help="do not list the misses")
    args = ap.parse_args(argv)
    docs = load_docs(Path(args.kb))
    cases = load_cases(Path(args.questions))
    missing = missing_ids(cases, [d.id for d in docs])
    if missing:
        print(f"warning: expected ids not in the KB: {', '.join(missing)}", file=sys.stderr)
    t0 = time.perf_counter()
    index = HybridIndex.build(docs)
    print(f"KB entries: {len(index)}; index built in {time.perf_counter() - t0:.1f} s")
    scores = Scores()
    told = args.stories or args.long_stories
    for n, case in enumerate(cases):
        text = in_story(case.text, n, long=args.long_stories) if told else case.text
        scores.add(case, to_result(understand(text, index, AUDIENCES[args.audience])))
    print(scores.report())
    if not args.quiet:
        print("misses:")
        for case, result in scores.misses:
            print(f"  [{case.expect}] -> {result.label} {result.reason or ''}  {case.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
