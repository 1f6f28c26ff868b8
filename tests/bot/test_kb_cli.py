"""``flask kb import/export/eval``: all-or-nothing imports with errors naming the line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from kefu import create_app
from kefu.extensions import db
from kefu.models import KbEntry
from tests.conftest import DATA, make_config


def _count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(KbEntry)) or 0


def test_import_upserts_by_id(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    first = runner.invoke(args=["kb", "import", str(DATA / "kb_test.jsonl")])
    assert first.exit_code == 0 and "8 new" in first.output
    rows = [json.loads(line) for line in (DATA / "kb_test.jsonl").read_text("utf-8").splitlines()]
    rows[0]["answer"] = "新的答案"
    changed = tmp_path / "kb.jsonl"
    changed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    second = runner.invoke(args=["kb", "import", str(changed)])
    assert second.exit_code == 0 and "0 new, 1 updated" in second.output
    assert _count(app) == 8
    with app.app_context():
        assert db.session.get(KbEntry, rows[0]["id"]).answer == "新的答案"


def test_bad_rows_name_their_lines_and_nothing_is_imported(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    good = (DATA / "kb_test.jsonl").read_text("utf-8").splitlines()
    bad = good[:2] + ['{"id": "x1", "question": "", "answer": "a"}', "{not json"] + good[2:4]
    bad.append(json.dumps({"id": "x2", "question": "q", "answer": "a", "audience": "vip"}))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(bad) + "\n", "utf-8")
    result = runner.invoke(args=["kb", "import", str(path)])
    assert result.exit_code == 1
    assert "line 3" in result.output and "question" in result.output
    assert "line 4" in result.output and "JSON" in result.output
    assert "line 7" in result.output and "audience" in result.output
    assert "nothing imported" in result.output
    assert _count(app) == 0


def test_duplicate_ids_and_wrong_types_are_errors(runner: FlaskCliRunner, tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "q", "answer": "x"},
        {"id": "a", "question": "q2", "answer": "y"},
        {"id": "b", "question": "q", "answer": "x", "alternates": "not a list"},
    ]
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), "utf-8")
    result = runner.invoke(args=["kb", "import", str(path)])
    assert result.exit_code == 1
    assert "line 2" in result.output and "duplicate" in result.output
    assert "line 3" in result.output and "alternates" in result.output


def test_csv_import_and_export_round_trip(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "question", "alternates", "answer", "audience", "tags"])
    writer.writerow(
        [
            "lock_battery",
            "门锁电池怎么换？",
            "门锁没电了|换电池",
            "打开后面板换4节5号电池。\n注意正负极。",
            "end_user",
            "门锁|电池",
        ]
    )
    path = tmp_path / "kb.csv"
    path.write_text(out.getvalue(), "utf-8")
    assert runner.invoke(args=["kb", "import", str(path)]).exit_code == 0
    exported = runner.invoke(args=["kb", "export", "--format", "csv"]).output
    row = next(csv.DictReader(io.StringIO(exported)))
    assert row["alternates"] == "门锁没电了|换电池"
    assert row["answer"] == "打开后面板换4节5号电池。\n注意正负极。"
    jsonl = runner.invoke(args=["kb", "export"]).output
    assert json.loads(jsonl.splitlines()[0])["tags"] == ["门锁", "电池"]


def test_csv_error_names_the_physical_line(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    text = 'id,question,answer\nok1,"多行\n问题",答案\nbad id!,问题,答案\n'
    path = tmp_path / "kb.csv"
    path.write_text(text, "utf-8")
    result = runner.invoke(args=["kb", "import", str(path)])
    assert result.exit_code == 1 and "line 4" in result.output
    assert _count(app) == 0


def test_unknown_extension_and_missing_file_are_clear_errors(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "kb.xlsx"
    path.write_bytes(b"PK")
    assert "only .jsonl or .csv" in runner.invoke(args=["kb", "import", str(path)]).output
    missing = runner.invoke(args=["kb", "import", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_eval_prints_per_class_figures_and_leaves_no_trace(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    cases = [
        {"text": "画面是倒的怎么调", "expect": "image_flip"},
        {"text": "转人工", "expect": "human"},
        {"text": "今天晚上吃什么", "expect": "none"},
    ]
    questions.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cases), "utf-8")
    result = runner.invoke(args=["kb", "eval", "--kb", str(DATA / "kb_test.jsonl"), str(questions)])
    assert result.exit_code == 0, result.output
    assert "answerable messages    1" in result.output
    assert (
        "targets                correct 100.0%, wrong 0.0%, "
        "out-of-scope without a KB answer 100.0%, handed off 100.0%"
    ) in result.output
    assert "correct     100.0%   target >= 90% (goal 95%)  met" in result.output
    assert "wrong         0.0%   target <= 3% (goal 2%)  met" in result.output
    assert "handed_off  100.0%   target >= 93% (goal 97%)  met" in result.output
    assert "warning" not in result.output
    assert _count(app) == 0


def test_eval_warns_when_the_labels_belong_to_another_kb(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    cases = [
        {"text": "门锁没电了", "expect": "lock_battery_low"},
        {"text": "在吗", "expect": "none"},
    ]
    questions.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cases), "utf-8")
    result = runner.invoke(args=["kb", "eval", "--kb", str(DATA / "kb_test.jsonl"), str(questions)])
    assert result.exit_code == 0, result.output
    assert "warning: 1 expected entry ids are not in the KB" in result.output
    assert "lock_battery_low" in result.output and "NOT MET" in result.output


def test_csv_saved_by_chinese_excel_in_gbk_is_read(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "kb.csv"
    path.write_bytes(
        "id,question,answer\nlock_battery,门锁电池怎么换？,换4节5号电池。\n".encode("gbk")
    )
    result = runner.invoke(args=["kb", "import", str(path)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(KbEntry, "lock_battery").question == "门锁电池怎么换？"


def test_an_unmigrated_database_gets_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    fresh = create_app(make_config(f"sqlite:///{tmp_path / 'new.db'}"))
    result = fresh.test_cli_runner().invoke(args=["kb", "import", str(DATA / "kb_test.jsonl")])
    assert result.exit_code != 0
    assert "flask --app wsgi db upgrade" in result.output
    assert "Traceback" not in result.output
