"""Handoff to a person: each trigger, the stored record, and the bot staying quiet after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from kefu import dialog
from kefu.extensions import db
from kefu.models import Handoff, UnansweredQuestion
from tests.conftest import FakeWeChat


@pytest.fixture(autouse=True)
def _wechat_kf_mode(app: Flask) -> None:
    """These tests cover HANDOFF_MODE=wechat_kf (WeChat's own tool); console mode has its own."""
    app.config["HANDOFF_MODE"] = "wechat_kf"


def _handoffs(app: Flask) -> list[Handoff]:
    with app.app_context():
        return list(db.session.scalars(select(Handoff).order_by(Handoff.id)))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("转人工", "requested"),
        ("我要找人工客服", "requested"),
        ("能不能找个真人跟我说", "requested"),
        ("什么破摄像头，我要投诉你们！！！", "angry"),
        ("画面倒着的，你们这垃圾产品退钱", "angry"),
        ("怎么解绑别人绑定在我家门口的摄像头，我想看他家的录像", "security"),
    ],
)
def test_each_trigger_hands_off_with_reason_and_transcript(
    app: Flask, wechat: FakeWeChat, kb_loaded: None, message: str, reason: str
) -> None:
    wechat.text("o_h", "你好")
    reply = wechat.reply(wechat.text("o_h", message))
    assert reply["MsgType"] == "transfer_customer_service"
    assert "KfAccount" not in reply
    [handoff] = _handoffs(app)
    assert handoff.reason == reason
    assert handoff.openid == "o_h"
    texts = [line["text"] for line in handoff.transcript]
    assert texts[0] == "你好" and texts[-1] == message


def test_two_failures_in_a_row_hand_off(app: Flask, wechat: FakeWeChat, kb_loaded: None) -> None:
    first = wechat.reply(wechat.text("o_fail", "比特币现在什么价"))
    assert first["MsgType"] == "text" and "人工" in first["Content"]
    second = wechat.reply(wechat.text("o_fail", "今天北京空气质量怎么样"))
    assert second["MsgType"] == "transfer_customer_service"
    [handoff] = _handoffs(app)
    assert handoff.reason == "repeated_failure"
    with app.app_context():
        assert len(db.session.scalars(select(UnansweredQuestion)).all()) == 2


def test_an_answer_resets_the_failure_count(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    wechat.text("o_reset", "比特币现在什么价")
    assert "画面翻转" in wechat.reply(wechat.text("o_reset", "画面是倒的怎么调"))["Content"]
    reply = wechat.reply(wechat.text("o_reset", "今天北京空气质量怎么样"))
    assert reply["MsgType"] == "text"
    assert _handoffs(app) == []


def test_while_a_person_owns_it_the_bot_stays_quiet(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    wechat.text("o_owned", "人工客服")
    reply = wechat.reply(wechat.text("o_owned", "画面是倒的怎么调"))
    assert reply["MsgType"] == "transfer_customer_service"
    image = wechat.reply(wechat.send("o_owned", "image", PicUrl="http://x/1.jpg", MediaId="m"))
    assert image["MsgType"] == "transfer_customer_service"
    # The agent closes the session in WeChat's customer-service system: the bot is back.
    wechat.event("o_owned", "kf_close_session", key="")
    back = wechat.reply(wechat.text("o_owned", "画面是倒的怎么调"))
    assert back["MsgType"] == "text" and "画面翻转" in back["Content"]
    assert [h.status for h in _handoffs(app)] == ["closed"]


def test_writing_to_a_person_keeps_the_conversation_theirs_until_it_goes_quiet(
    app: Flask, kb_loaded: None
) -> None:
    idle = timedelta(minutes=app.config["HANDOFF_IDLE_MINUTES"])
    start = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)

    def say(text: str, at: datetime) -> str:
        with app.app_context():
            outcome = dialog.respond("o_quiet", text, at).outcome
            db.session.commit()
            return outcome

    assert say("转人工", start) == "handoff"
    # Each message restarts the idle clock: three idle windows later the person still has it.
    at = start
    for _ in range(3):
        at += idle - timedelta(minutes=1)
        assert say("还在吗", at) == "with_human"
    # Once the user has been quiet for longer than that, the bot answers again.
    assert say("画面是倒的怎么调", at + idle + timedelta(minutes=1)) == "answer"
    assert [h.status for h in _handoffs(app)] == ["closed"]


def test_transfer_names_the_agent_account_when_configured(
    make_app: Callable[..., Flask], kb_loaded: None
) -> None:
    app = make_app(WECHAT_KF_ACCOUNT="kf2001@gh_kefu_test", HANDOFF_MODE="wechat_kf")
    wechat = FakeWeChat(app.test_client())
    reply = wechat.reply(wechat.text("o_kf", "转人工"))
    assert reply["MsgType"] == "transfer_customer_service"
    assert reply["KfAccount"] == "kf2001@gh_kefu_test"


def test_menu_click_keys_are_configurable(app: Flask, wechat: FakeWeChat, kb_loaded: None) -> None:
    answer = wechat.reply(wechat.event("o_menu", "CLICK", key="MENU_WIFI"))
    assert "2.4G" in answer["Content"]
    human = wechat.reply(wechat.event("o_menu", "CLICK", key="MENU_HUMAN"))
    assert human["MsgType"] == "transfer_customer_service"
    assert _handoffs(app)[0].reason == "menu"


def test_unanswered_questions_are_listed_for_the_kb_team(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    wechat.text("o_q1", "比特币现在什么价")
    wechat.text("o_q2", "比特币现在什么价")
    wechat.text("o_q3", "今天北京空气质量怎么样")
    output = app.test_cli_runner().invoke(args=["kb", "unanswered"]).output
    lines = output.splitlines()
    assert "比特币现在什么价" in lines[1] and lines[1].split()[0] == "2"
    assert "今天北京空气质量怎么样" in lines[2]
