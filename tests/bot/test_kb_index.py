"""The per-process index: rebuilt when the KB changes, in the background when it is large."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from kefu import kb
from kefu.nlu import dense
from tests.conftest import DATA


def _import_with_answer(runner: FlaskCliRunner, tmp_path: Path, answer: str) -> None:
    rows = [json.loads(line) for line in (DATA / "kb_test.jsonl").read_text("utf-8").splitlines()]
    for row in rows:
        if row["id"] == "image_flip":
            row["answer"] = answer
    path = tmp_path / f"kb-{time.time_ns()}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert runner.invoke(args=["kb", "import", str(path)]).exit_code == 0


def _count_embeddings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The KB texts embedded from now on (messages are not counted), filled as they are."""
    embedded: list[str] = []
    real = dense.embed

    def counting(texts: list[str], query: bool = False, batch: int = 64) -> np.ndarray:
        if not query:
            embedded.extend(texts)
        return real(texts, query, batch)

    monkeypatch.setattr(dense, "embed", counting)
    return embedded


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


def test_import_publishes_a_revision_whose_index_is_saved_already(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import_with_answer(runner, tmp_path, "答案")
    with app.app_context():
        assert (kb.index_folder(kb.current_revision()) / "meta.json").exists()
        # A worker started now maps it: nothing is embedded on its way to the first answer.
        kb.drop_cached_indexes()
        monkeypatch.setattr(dense, "embed", _no_embedding)
        assert kb.snapshot().index.mapped
        assert kb.snapshot().entries["image_flip"].answer == "答案"


def test_rebuild_embeds_only_the_texts_that_changed(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import_with_answer(runner, tmp_path, "答案一")
    embedded = _count_embeddings(monkeypatch)
    _import_with_answer(runner, tmp_path, "答案二：在App中打开画面翻转")
    # The changed answer is the one new text of a 12-entry KB; the rest come from the saved one.
    assert len(embedded) == 1 and "画面翻转" in embedded[0]
    with app.app_context():
        assert kb.snapshot().entries["image_flip"].answer == "答案二：在App中打开画面翻转"


def test_an_upgrade_to_a_new_index_format_reuses_the_old_indexs_vectors(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import_with_answer(runner, tmp_path, "答案")
    with app.app_context():
        # The saved index as an earlier release with the same phrasing rows left it.
        folder = kb.index_folder(kb.current_revision())
        meta = json.loads((folder / "meta.json").read_text("utf-8"))
        meta["format"] = 3
        (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        old = folder.with_name(folder.name.replace(f"-v{kb.FORMAT_VERSION}-", "-v3-"))
        folder.rename(old)
        kb.drop_cached_indexes()
        embedded = _count_embeddings(monkeypatch)
        index = kb.load_or_build_index(kb.current_revision())
        # Built in this release's format, without embedding the KB again.
        assert index.meta["format"] == kb.FORMAT_VERSION and embedded == []
        assert (folder / "meta.json").exists()


def test_a_restarted_worker_answers_from_the_previous_index_while_the_new_one_builds(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import_with_answer(runner, tmp_path, "旧答案")
    rows = [json.loads(line) for line in (DATA / "kb_test.jsonl").read_text("utf-8").splitlines()]
    rows = [r for r in rows if r["id"] != "sd_card_capacity"]  # an entry deleted ...
    for row in rows:
        if row["id"] == "image_flip":
            row["answer"] = "新答案"
    path = tmp_path / "deferred.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    with app.app_context():
        kb.upsert(kb.read_file(path))
        from kefu.extensions import db
        from kefu.models import KbEntry

        # ... and the import left its index to the workers (--defer-index).
        db.session.query(KbEntry).filter_by(id="sd_card_capacity").delete()
        db.session.commit()
        kb.drop_cached_indexes()
    release = threading.Event()
    monkeypatch.setattr(kb, "_build_elsewhere", lambda app: release.wait(10))
    kb.warm_up(app)
    with app.app_context():
        started = time.monotonic()
        snap = kb.snapshot()
        assert time.monotonic() - started < kb.READY_WAIT_SECONDS
        assert kb.ready()
        # Today's answers, found through yesterday's index; the deleted entry is never offered.
        assert snap.entries["image_flip"].answer == "新答案"
        result = snap.understand(
            "存储卡最大支持多少G？", frozenset({"all", "end_user", "installer"}), frozenset()
        )
        assert all(c.id != "sd_card_capacity" for c in result.candidates)
        assert result.kind != "answer"
    release.set()
    deadline = time.monotonic() + 60
    with app.app_context():
        while "sd_card_capacity" in kb.snapshot().index.ids:
            assert time.monotonic() < deadline, "the new revision's index never replaced it"
            time.sleep(0.1)


def _no_embedding(texts: list[str], query: bool = False, batch: int = 64) -> np.ndarray:
    if query:
        return np.ones((len(texts), dense.DIM), dtype=np.float32) / np.sqrt(dense.DIM)
    raise AssertionError(f"a worker embedded {len(texts)} KB texts on its way to answering")
