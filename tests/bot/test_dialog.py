"""Conversation flow: numbered choices, installer-only entries, state across restarts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from kefu import kb
from kefu.catalog.models import Installer
from kefu.extensions import db
from kefu.models import Handoff, UnansweredQuestion
from tests.conftest import FakeWeChat

CLOSE_CALL_KB = [
    {
        "id": "reset_camera",
        "question": "摄像头怎么恢复出厂设置？",
        "alternates": ["摄像头复位"],
        "answer": "摄像头：通电状态下用卡针长按复位孔5秒，听到提示音后松开。",
        "audience": "all",
        "tags": ["复位"],
    },
    {
        "id": "reset_doorbell",
        "question": "门铃怎么恢复出厂设置？",
        "alternates": ["门铃复位"],
        "answer": "门铃：取下主机，长按背面复位键10秒，指示灯变红后松开。",
        "audience": "all",
        "tags": ["复位"],
    },
]


def _import(runner: FlaskCliRunner, tmp_path: Path, rows: list[dict[str, object]]) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    result = runner.invoke(args=["kb", "import", str(path)])
    assert result.exit_code == 0, result.output


def test_close_call_offers_numbered_choices_answered_by_digit(
    runner: FlaskCliRunner, wechat: FakeWeChat, tmp_path: Path
) -> None:
    _import(runner, tmp_path, CLOSE_CALL_KB)
    offer = wechat.reply(wechat.text("o_choice", "怎么恢复出厂设置"))
    assert offer["MsgType"] == "text"
    assert "1." in offer["Content"] and "2." in offer["Content"]
    lines = offer["Content"].splitlines()
    second = next(line for line in lines if line.startswith("2."))
    chosen = wechat.reply(wechat.text("o_choice", "2"))
    expected = "门铃" if "门铃" in second else "摄像头"
    assert chosen["Content"].startswith(expected + "：")


def test_none_of_these_records_the_question_for_the_kb_team(
    app: Flask, runner: FlaskCliRunner, wechat: FakeWeChat, tmp_path: Path
) -> None:
    _import(runner, tmp_path, CLOSE_CALL_KB)
    wechat.text("o_zero", "怎么恢复出厂设置")
    reply = wechat.reply(wechat.text("o_zero", "0"))
    assert "人工" in reply["Content"]
    with app.app_context():
        [question] = db.session.scalars(select(UnansweredQuestion)).all()
        assert question.text == "怎么恢复出厂设置"


def test_out_of_range_choice_asks_again(
    runner: FlaskCliRunner, wechat: FakeWeChat, tmp_path: Path
) -> None:
    _import(runner, tmp_path, CLOSE_CALL_KB)
    wechat.text("o_range", "怎么恢复出厂设置")
    again = wechat.reply(wechat.text("o_range", "7"))
    assert "1 到 2" in again["Content"]
    answered = wechat.reply(wechat.text("o_range", "1"))
    assert "复位" in answered["Content"]


def test_conversation_survives_a_restart(
    make_app: Callable[..., Flask], runner: FlaskCliRunner, tmp_path: Path
) -> None:
    _import(runner, tmp_path, CLOSE_CALL_KB)
    before = FakeWeChat(make_app().test_client())
    offer = before.reply(before.text("o_restart", "怎么恢复出厂设置"))
    assert "1." in offer["Content"]
    kb.drop_cached_indexes()  # a new process starts with no cached index
    after = FakeWeChat(make_app().test_client())
    chosen = after.reply(after.text("o_restart", "1"))
    assert chosen["MsgType"] == "text" and "长按" in chosen["Content"]


def test_installer_only_entries_are_not_given_to_end_users(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    reply = wechat.reply(wechat.text("o_enduser", "PoE交换机能带几台摄像头，供电功率怎么算"))
    assert "120W" not in reply["Content"]
    # Told that it is an installer's job, not handed the next-best (wrong) entry.
    assert "安装" in reply["Content"] and "人工" in reply["Content"]


def test_an_installer_bound_to_wechat_gets_installer_entries(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    with app.app_context():
        installer = Installer(phone="13900000002", name="张工", company="", status="approved")
        installer.wechat_openid = "o_installer"
        db.session.add(installer)
        db.session.commit()
    reply = wechat.reply(wechat.text("o_installer", "PoE交换机能带几台摄像头，供电功率怎么算"))
    assert "120W" in reply["Content"]


STORY = "我上个月在网上买的，装在老家给我爸妈用，他们年纪大了不太会弄，"


def test_a_question_at_the_end_of_a_long_post_is_answered(
    runner: FlaskCliRunner, wechat: FakeWeChat, tmp_path: Path
) -> None:
    # Over 200 characters of story before the question: the bot reads the post's end too.
    _import(runner, tmp_path, CLOSE_CALL_KB)
    post = STORY * 8 + "门铃怎么恢复出厂设置"
    assert len(post) > 250
    reply = wechat.reply(wechat.text("o_long_post", post))
    assert reply["Content"].startswith("门铃：")


def test_a_request_for_a_person_deep_in_a_long_post_is_handed_off(
    app: Flask, runner: FlaskCliRunner, wechat: FakeWeChat, tmp_path: Path
) -> None:
    _import(runner, tmp_path, CLOSE_CALL_KB)
    post = STORY * 7 + "我要投诉，转人工！" + STORY * 8
    assert post.index("转人工") > 200
    wechat.reply(wechat.text("o_long_complaint", post))
    with app.app_context():
        handoff = db.session.scalar(select(Handoff).where(Handoff.openid == "o_long_complaint"))
    assert handoff is not None
