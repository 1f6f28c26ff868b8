"""Accuracy floor on a labelled message set written independently of the dev questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kefu.nlu import KbDoc, KbIndex, understand

DATA = Path(__file__).parent / "data"
KB_DEV = Path(__file__).resolve().parents[3] / "shared" / "eval" / "kb_dev.jsonl"
ALL = frozenset({"all", "end_user", "installer"})


@pytest.mark.skipif(not KB_DEV.exists(), reason="shared eval KB not available")
def test_extra_questions_against_dev_kb() -> None:
    docs = []
    for line in KB_DEV.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        docs.append(KbDoc(d["id"], d["question"], tuple(d["alternates"]), d["audience"],
                          tuple(d["tags"]), d["answer"]))
    index = KbIndex.build(docs)
    rows = [json.loads(x) for x in (DATA / "questions_extra.jsonl").read_text("utf-8").splitlines()]
    right = wrong = total_in = kept_out = total_out = handed = total_h = 0
    for row in rows:
        u = understand(row["text"], index, ALL)
        got = (u.candidates[0].id if u.kind == "answer" else "human" if u.kind == "handoff"
               else u.kind)
        if row["expect"] == "none":
            total_out += 1
            kept_out += u.kind != "answer"
        elif row["expect"] == "human":
            total_h += 1
            handed += got == "human"
        else:
            total_in += 1
            right += got == row["expect"]
            wrong += u.kind == "answer" and got != row["expect"]
    assert right >= 0.95 * total_in
    assert wrong <= 0.02 * total_in
    assert kept_out >= 0.95 * total_out
    assert handed >= 0.95 * total_h
