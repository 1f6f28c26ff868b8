"""The /wechat webhook as WeChat's servers use it: verification, signatures, safe mode, retries."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kefu.catalog.models import Installer
from kefu.extensions import db
from kefu.models import ChatMessage, Conversation, Handoff, InboundMessage, Subscriber
from tests.conftest import WECHAT_TOKEN, FakeWeChat

WIFI_ANSWER = "请确认家中Wi-Fi为2.4G频段"


def test_url_verification_echoes_echostr(client: FlaskClient, wechat: FakeWeChat) -> None:
    query = wechat.query() | {"echostr": "8812345678901234567"}
    response = client.get("/wechat", query_string=query)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "8812345678901234567"


def test_url_verification_rejects_bad_signature(client: FlaskClient, wechat: FakeWeChat) -> None:
    query = wechat.query() | {"echostr": "abc", "signature": "0" * 40}
    assert client.get("/wechat", query_string=query).status_code == 403
    assert client.get("/wechat", query_string={"echostr": "abc"}).status_code == 403


def test_forged_post_is_rejected_and_not_processed(
    app: Flask, client: FlaskClient, wechat: FakeWeChat, kb_loaded: None
) -> None:
    query = wechat.query()
    query["signature"] = FakeWeChat.sign("wrong-token", query["timestamp"], query["nonce"])
    body = wechat.xml("o_forger", "text", {"Content": "摄像头配网失败"}, 1)
    response = client.post("/wechat", query_string=query, data=body)
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ChatMessage)) == 0


def test_text_answer_is_the_entry_answer_as_written(wechat: FakeWeChat, kb_loaded: None) -> None:
    reply = wechat.reply(wechat.text("o_user1", "摄像头连不上家里的wifi，配网一直失败"))
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == "o_user1"
    assert reply["FromUserName"] == "gh_kefu_test"
    assert reply["Content"].startswith(WIFI_ANSWER)


def test_safe_mode_decrypts_and_encrypts(
    client: FlaskClient, wechat_safe: FakeWeChat, kb_loaded: None
) -> None:
    response = wechat_safe.text("o_safe", "画面是倒的怎么调")
    body = response.get_data(as_text=True)
    assert "<Encrypt>" in body and "画面翻转" not in body  # nothing readable on the wire
    reply = wechat_safe.reply(response)
    assert reply["MsgType"] == "text"
    assert "画面翻转" in reply["Content"]


def test_safe_mode_with_wrong_msg_signature_is_refused(
    app: Flask, client: FlaskClient, wechat_safe: FakeWeChat, kb_loaded: None
) -> None:
    query = wechat_safe.query()
    xml = wechat_safe.xml("o_tamper", "text", {"Content": "画面是倒的"}, 42)
    envelope = wechat_safe.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
    query |= {"encrypt_type": "aes", "msg_signature": "f" * 40}
    response = client.post("/wechat", query_string=query, data=envelope)
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_unreadable_bodies_get_success_never_5xx(client: FlaskClient, wechat: FakeWeChat) -> None:
    bodies: list[bytes] = [
        b"",
        b"not xml at all",
        b"<xml><Content>no sender, no type</Content>",
        b"<xml><MsgType>text</MsgType></xml>",
        "<xml><FromUserName>o</FromUserName><MsgType>text</MsgType></xml>".encode("utf-16"),
        b"\xff\xfe\x00garbage",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<xml>&b;</xml>",
    ]
    for body in bodies:
        response = client.post("/wechat", query_string=wechat.query(), data=body)
        assert response.status_code == 200, body
        assert response.get_data(as_text=True) == "success"
        assert "Traceback" not in response.get_data(as_text=True)


def test_encrypted_body_without_key_gets_success(
    make_app: Callable[..., Flask], wechat: FakeWeChat
) -> None:
    plain_app = make_app(WECHAT_ENCODING_AES_KEY="", WECHAT_MESSAGE_MODE="plain")
    client = plain_app.test_client()
    query = wechat.query() | {"encrypt_type": "aes", "msg_signature": "a" * 40}
    response = client.post("/wechat", query_string=query, data="<xml><Encrypt>abc</Encrypt></xml>")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"


def test_body_over_one_megabyte_is_refused(client: FlaskClient, wechat: FakeWeChat) -> None:
    body = b"<xml>" + b"a" * (1024 * 1024 + 1) + b"</xml>"
    response = client.post("/wechat", query_string=wechat.query(), data=body)
    assert response.status_code == 413


def test_retry_is_processed_once_and_gets_the_same_reply(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    first = wechat.reply(wechat.text("o_retry", "摄像头配网失败怎么办", msg_id=777001))
    for _ in range(3):  # WeChat retries up to three times
        again = wechat.reply(wechat.text("o_retry", "摄像头配网失败怎么办", msg_id=777001))
        assert again["Content"] == first["Content"]
    with app.app_context():
        lines = db.session.scalars(
            select(ChatMessage).where(
                ChatMessage.openid == "o_retry", ChatMessage.direction == "in"
            )
        ).all()
        assert len(lines) == 1


def test_retried_failure_does_not_count_twice(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    """Two deliveries of one unanswerable message are one failure, not a handoff."""
    wechat.text("o_retry2", "比特币现在什么价", msg_id=880001)
    reply = wechat.reply(wechat.text("o_retry2", "比特币现在什么价", msg_id=880001))
    assert reply["MsgType"] == "text"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Handoff)) == 0


def test_event_retry_is_deduplicated_by_sender_time_and_event(
    app: Flask, wechat: FakeWeChat
) -> None:
    wechat.event("o_evt", "subscribe", create_time=1700000000)
    wechat.event("o_evt", "subscribe", create_time=1700000000)
    with app.app_context():
        welcomes = db.session.scalars(
            select(ChatMessage).where(ChatMessage.openid == "o_evt")
        ).all()
        assert len(welcomes) == 1


def test_subscribe_welcomes_and_remembers_qr_scene(app: Flask, wechat: FakeWeChat) -> None:
    reply = wechat.reply(wechat.event("o_new", "subscribe", key="qrscene_store_shanghai_01"))
    assert reply["MsgType"] == "text"
    assert "人工" in reply["Content"] and "摄像头" in reply["Content"]
    wechat.event("o_new", "SCAN", key="device_label")
    with app.app_context():
        subscriber = db.session.get(Subscriber, "o_new")
        assert subscriber is not None
        assert subscriber.scene == "store_shanghai_01"
        assert subscriber.last_scene == "device_label"


def test_unsubscribe_removes_personal_data(app: Flask, wechat: FakeWeChat, kb_loaded: None) -> None:
    with app.app_context():
        installer = Installer(phone="13900000001", name="李工", company="", status="approved")
        installer.wechat_openid = "o_leaving"
        db.session.add(installer)
        db.session.commit()
    wechat.event("o_leaving", "subscribe", key="qrscene_x")
    wechat.text("o_leaving", "转人工")
    wechat.event("o_leaving", "unsubscribe")
    with app.app_context():
        assert db.session.get(Subscriber, "o_leaving") is None
        assert db.session.get(Conversation, "o_leaving") is None
        assert (
            db.session.scalars(select(ChatMessage).where(ChatMessage.openid == "o_leaving")).all()
            == []
        )
        handoff = db.session.scalars(select(Handoff)).one()
        assert handoff.openid is None and handoff.transcript == []
        assert db.session.scalars(select(Installer)).one().wechat_openid is None
        keys = db.session.scalars(select(InboundMessage.dedupe_key)).all()
        # Only the unsubscribe delivery itself is remembered (for WeChat's retries).
        assert [k for k in keys if "o_leaving" in k] == [
            next(k for k in keys if k.endswith(":unsubscribe:"))
        ]
        assert (
            db.session.scalars(
                select(InboundMessage).where(InboundMessage.openid == "o_leaving")
            ).all()
            == []
        )


def test_voice_uses_recognition_or_asks_to_type(wechat: FakeWeChat, kb_loaded: None) -> None:
    spoken = wechat.reply(
        wechat.send("o_voice", "voice", MediaId="m1", Format="amr", Recognition="画面是倒的怎么调")
    )
    assert "画面翻转" in spoken["Content"]
    silent = wechat.reply(wechat.send("o_voice", "voice", MediaId="m2", Format="amr"))
    assert "文字" in silent["Content"]


def test_media_messages_get_useful_answers(wechat: FakeWeChat) -> None:
    image = wechat.reply(wechat.send("o_media", "image", PicUrl="http://x/1.jpg", MediaId="m"))
    location = wechat.reply(
        wechat.send(
            "o_media", "location", Location_X="31.2", Location_Y="121.4", Scale=15, Label="上海"
        )
    )
    link = wechat.reply(wechat.send("o_media", "link", Title="t", Description="d", Url="http://x"))
    assert "图片" in image["Content"] and "人工" in image["Content"]
    assert "位置" in location["Content"]
    assert "链接" in link["Content"]


def test_signature_uses_configured_token(wechat: FakeWeChat) -> None:
    assert FakeWeChat.sign(WECHAT_TOKEN, "1", "2") != FakeWeChat.sign("other", "1", "2")


def test_old_dedupe_records_and_transcripts_are_pruned(app: Flask, wechat: FakeWeChat) -> None:
    from datetime import UTC, datetime, timedelta

    from kefu import dialog

    wechat.text("o_old", "你好")
    with app.app_context():
        dialog.prune(datetime.now(UTC) + timedelta(days=2))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(InboundMessage)) == 0
        assert db.session.scalar(select(func.count()).select_from(ChatMessage)) == 2
        dialog.prune(datetime.now(UTC) + timedelta(days=31))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(ChatMessage)) == 0
