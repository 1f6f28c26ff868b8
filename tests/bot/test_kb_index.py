"""The per-process index: rebuilt when the KB changes, in the background when it is large."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from kefu import kb
from tests.conftest import DATA


def _import_with_answer(runner: FlaskCliRunner, tmp_path: Path, answer: str) -> None:
    rows = [json.loads(line) for line in (DATA / "kb_test.jsonl").read_text("utf-8").splitlines()]
    for row in rows:
        if row["id"] == "image_flip":
            row["answer"] = answer
    path = tmp_path / f"kb-{time.time_ns()}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert runner.invoke(args=["kb", "import", str(path)]).exit_code == 0


def _answer(app: Flask) -> str:
    with app.app_context():
        snap = kb.snapshot()
        return snap.entries["image_flip"].answer


def test_small_kb_change_is_seen_at_once(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _import_with_answer(runner, tmp_path, "旧答案")
    assert _answer(app) == "旧答案"
    _import_with_answer(runner, tmp_path, "新答案")
    assert _answer(app) == "新答案"


def test_large_kb_is_rebuilt_in_the_background(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kb, "BACKGROUND_REBUILD_ENTRIES", 1)
    _import_with_answer(runner, tmp_path, "旧答案")
    assert _answer(app) == "旧答案"
    _import_with_answer(runner, tmp_path, "新答案")
    # The next message is answered from the previous index, without waiting for a rebuild ...
    assert _answer(app) == "旧答案"
    deadline = time.monotonic() + 10
    while _answer(app) != "新答案":
        assert time.monotonic() < deadline, "background rebuild never finished"
        time.sleep(0.05)


def test_index_is_saved_once_and_mapped_by_the_next_worker(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _import_with_answer(runner, tmp_path, "答案")
    with app.app_context():
        first = kb.snapshot().index
        folder = kb.index_folder(kb.current_revision())
        assert first.mapped and (folder / "meta.json").exists()
        saved_at = (folder / "meta.json").stat().st_mtime_ns
        # A new worker (nothing cached) maps the saved files instead of building again.
        kb.drop_cached_indexes()
        again = kb.snapshot().index
        assert again.mapped and again is not first and again.ids == first.ids
        assert (folder / "meta.json").stat().st_mtime_ns == saved_at
        assert kb.load_or_build_index(kb.current_revision()).ids == first.ids
