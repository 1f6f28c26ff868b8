"""A knowledge-base import of any size works on PostgreSQL (statements are batched)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from kefu.catalog.models import KbEntryProduct
from kefu.extensions import db
from kefu.models import KbEntry

ROWS = 70_000  # more rows than PostgreSQL's 65,535 parameters in one statement


def _write(path: Path, rows: int, answer: str = "答案") -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            entry = {
                "id": f"gen_{i:06d}",
                "question": f"第{i}号设备怎么配网",
                "alternates": [f"设备{i}连不上"],
                "answer": f"{answer}{i}",
                "products": ["camera"] if i % 10 == 0 else [],
            }
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def test_a_70k_entry_import_works(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    _write(path, ROWS)
    # The statements are what is measured here: embedding 70k entries would take an hour.
    result = runner.invoke(args=["kb", "import", "--defer-index", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{ROWS} new" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(KbEntry)) == ROWS
        assert db.session.scalar(select(func.count()).select_from(KbEntryProduct)) == ROWS // 10
        assert db.session.get(KbEntry, "gen_069999").question == "第69999号设备怎么配网"


def test_small_batches_import_and_update_the_same(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """KB_IMPORT_BATCH only changes how many rows go in one statement."""
    worker = make_app(KB_IMPORT_BATCH=7)
    path = tmp_path / "kb.jsonl"
    _write(path, 100)
    runner = worker.test_cli_runner()
    assert "100 new" in runner.invoke(args=["kb", "import", str(path)]).output
    _write(path, 100, answer="新答案")
    result = runner.invoke(args=["kb", "import", str(path)])
    assert "0 new, 100 updated" in result.output, result.output
    with worker.app_context():
        assert db.session.scalar(select(func.count()).select_from(KbEntry)) == 100
        assert db.session.scalar(select(func.count()).select_from(KbEntryProduct)) == 10
        assert db.session.get(KbEntry, "gen_000099").answer == "新答案99"
