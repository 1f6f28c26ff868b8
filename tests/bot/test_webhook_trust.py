"""What ``/wechat`` trusts: safe mode, fresh and single-use signatures, start-up checks, events,
escaped replies, hostile bodies, and concurrent first deliveries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from kefu import create_app, dialog, integrations, kb
from kefu.catalog.models import Device, ProductModel, Series
from kefu.extensions import db
from kefu.models import ChatMessage, Conversation, InboundMessage, Subscriber, WebhookNonce
from kefu.wechat import (
    MAX_TEXT_CHARS,
    Endpoint,
    Inbound,
    MessageMode,
    Refused,
    text_reply,
    transfer_reply,
)
from tests.conftest import (
    REDIS_TEST_URL,
    WECHAT_AES_KEY,
    WECHAT_APP_ID,
    WECHAT_TOKEN,
    FakeWeChat,
    make_config,
)

UNSUPPORTED = "只能处理文字消息"


def load_index(app: Flask) -> None:
    """Build the knowledge-base index now, as a worker does at start (messages never wait)."""
    with app.app_context():
        kb.snapshot()


def count(model: Any) -> int:
    """Rows of ``model`` (inside an app context)."""
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def signed_query(timestamp: int | None = None, nonce: str = "1234567890") -> dict[str, str]:
    """A correctly signed query string for ``timestamp`` (default now)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"signature": FakeWeChat.sign(WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}


def text_xml(openid: str, content: str, msg_id: int) -> str:
    """A plaintext text message as WeChat sends it."""
    return FakeWeChat(None, False).xml(openid, "text", {"Content": content}, msg_id)  # type: ignore[arg-type]


# --- Safe mode means encrypted only -------------------------------------------------------------


@pytest.fixture
def safe_app(make_app: Callable[..., Flask]) -> Flask:
    """An app in safe mode (the default when an EncodingAESKey is set)."""
    return make_app(WECHAT_MESSAGE_MODE="")


def test_safe_mode_refuses_plaintext_bodies(safe_app: Flask) -> None:
    client = safe_app.test_client()
    body = text_xml("o_victim", "你好", 5001)
    assert client.post("/wechat", query_string=signed_query(), data=body).status_code == 403
    raw = signed_query(nonce="222") | {"encrypt_type": "raw"}
    assert client.post("/wechat", query_string=raw, data=body).status_code == 403
    # A forged unfollow is exactly what a plaintext body must not be able to do.
    with safe_app.app_context():
        db.session.add(Subscriber(openid="o_victim", subscribed_at=datetime.now(UTC)))
        db.session.commit()
    unfollow = FakeWeChat(client).xml("o_victim", "event", {"Event": "unsubscribe"}, None)
    forged = client.post("/wechat", query_string=signed_query(nonce="333"), data=unfollow)
    assert forged.status_code == 403
    with safe_app.app_context():
        assert db.session.get(Subscriber, "o_victim") is not None
        assert count(InboundMessage) == 0 and count(ChatMessage) == 0


def test_safe_mode_answers_encrypted_deliveries(safe_app: Flask) -> None:
    wechat = FakeWeChat(safe_app.test_client(), safe_mode=True)
    response = wechat.event("o_safe", "subscribe")
    assert response.status_code == 200 and "<Encrypt>" in response.get_data(as_text=True)
    assert "人工" in wechat.reply(response)["Content"]


def test_safe_mode_requires_and_checks_msg_signature(safe_app: Flask) -> None:
    client = safe_app.test_client()
    wechat = FakeWeChat(client, safe_mode=True)
    query = signed_query()
    envelope = wechat.crypto.encrypt_message(
        text_xml("o_t", "你好", 5002), query["nonce"], query["timestamp"]
    )
    missing = query | {"encrypt_type": "aes"}
    assert client.post("/wechat", query_string=missing, data=envelope).status_code == 403
    wrong = signed_query(nonce="999") | {"encrypt_type": "aes", "msg_signature": "0" * 40}
    assert client.post("/wechat", query_string=wrong, data=envelope).status_code == 403
    with safe_app.app_context():
        assert count(InboundMessage) == 0


def test_compatible_mode_is_explicit_and_takes_both(make_app: Callable[..., Flask]) -> None:
    app = make_app(WECHAT_MESSAGE_MODE="compatible")
    plain = FakeWeChat(app.test_client())
    safe = FakeWeChat(app.test_client(), safe_mode=True)
    assert plain.reply(plain.event("o_c1", "subscribe"))["MsgType"] == "text"
    assert safe.reply(safe.event("o_c2", "subscribe"))["MsgType"] == "text"


def test_mode_is_derived_from_the_key_when_unset() -> None:
    assert integrations.message_mode({"WECHAT_ENCODING_AES_KEY": WECHAT_AES_KEY}) == "safe"
    assert integrations.message_mode({"WECHAT_ENCODING_AES_KEY": ""}) == "plain"
    assert integrations.message_mode({"WECHAT_MESSAGE_MODE": "Compatible"}) == "compatible"


# --- Signatures expire and nonces are single-use ------------------------------------------------


def test_stale_and_future_timestamps_are_refused(
    app: Flask, client: FlaskClient, make_app: Callable[..., Flask]
) -> None:
    now = int(time.time())
    for offset, status in [(-301, 403), (400, 403), (-200, 200)]:
        query = signed_query(now + offset, nonce=f"n{offset + 1000}")
        body = text_xml("o_clock", "你好", 6000 + offset)
        assert client.post("/wechat", query_string=query, data=body).status_code == status
    strict = make_app(WECHAT_SIGNATURE_MAX_AGE=60).test_client()
    query = signed_query(now - 100, nonce="n77")
    assert strict.post("/wechat", query_string=query, data=text_xml("o", "x", 1)).status_code == 403
    stale_get = signed_query(now - 3600) | {"echostr": "123"}
    assert client.get("/wechat", query_string=stale_get).status_code == 403


def subscribe_xml(openid: str, create_time: int) -> str:
    """A plaintext subscribe event."""
    fields: dict[str, str | int] = {"Event": "subscribe", "CreateTime": create_time}
    return FakeWeChat(None, False).xml(openid, "event", fields, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("redis_url", [REDIS_TEST_URL, ""], ids=["redis", "database"])
def test_a_nonce_carries_one_delivery(make_app: Callable[..., Flask], redis_url: str) -> None:
    app = make_app(REDIS_URL=redis_url)
    client = app.test_client()
    query = signed_query()
    now = int(time.time())
    first = client.post("/wechat", query_string=query, data=subscribe_xml("o_n", now))
    assert first.status_code == 200 and "<Content>" in first.get_data(as_text=True)
    # The same signed URL with another delivery (a replay by someone who saw the URL): refused.
    other = client.post("/wechat", query_string=query, data=subscribe_xml("o_n", now + 1))
    assert other.status_code == 403
    forged = client.post("/wechat", query_string=query, data=subscribe_xml("o_else", now))
    assert forged.status_code == 403
    # The same delivery again (WeChat's retry, should it reuse the URL): the first reply.
    again = client.post("/wechat", query_string=query, data=subscribe_xml("o_n", now))
    assert again.status_code == 200
    assert first_content(again) == first_content(first)
    with app.app_context():
        assert count(InboundMessage) == 1 and count(Subscriber) == 1
        lines = db.session.scalars(select(ChatMessage.text).where(ChatMessage.openid == "o_n"))
        assert list(lines) == [first_content(first)]
        assert count(WebhookNonce) == (0 if redis_url else 1)


def first_content(response: TestResponse) -> str:
    """The Content of a plaintext reply."""
    return ElementTree.fromstring(response.get_data(as_text=True)).findtext("Content") or ""


def test_remembered_nonces_are_pruned(
    app: Flask, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    db_app = make_app(REDIS_URL="")
    with db_app.app_context():
        old = datetime.now(UTC) - timedelta(hours=1)
        db.session.add(WebhookNonce(key="1:old", delivery="msg:1", created_at=old))
        db.session.commit()
    monkeypatch.setattr(integrations.DbNonceStore, "PRUNE_CHANCE", 1.0)
    wechat = FakeWeChat(db_app.test_client())
    assert wechat.event("o_prune", "subscribe").status_code == 200
    with db_app.app_context():
        keys = db.session.scalars(select(WebhookNonce.key)).all()
        assert "1:old" not in keys and len(keys) == 1


def test_endpoint_refuses_bad_query_values() -> None:
    endpoint = Endpoint(WECHAT_TOKEN, max_age=300)
    good = signed_query()
    store = integrations.NonceStore()
    for bad in [
        good | {"timestamp": "１２３"},
        good | {"nonce": "12\x0034"},
        good | {"signature": "x" * 40},
        {k: v for k, v in good.items() if k != "signature"},
    ]:
        with pytest.raises(Refused):
            endpoint.open(bad, b"<xml/>", store)
    with pytest.raises(Refused):
        Endpoint("").open(good, b"<xml/>", store)


# --- Misconfiguration fails at start ------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"WECHAT_MESSAGE_MODE": "safe", "WECHAT_ENCODING_AES_KEY": "short"}, "43-character"),
        ({"WECHAT_ENCODING_AES_KEY": WECHAT_AES_KEY[:-1] + "!"}, "not a valid EncodingAESKey"),
        ({"WECHAT_MESSAGE_MODE": "safe", "WECHAT_APP_ID": ""}, "WECHAT_APP_ID"),
        ({"WECHAT_MESSAGE_MODE": "", "WECHAT_APP_ID": ""}, "WECHAT_APP_ID"),
        ({"WECHAT_MESSAGE_MODE": "compatible", "WECHAT_ENCODING_AES_KEY": ""}, "43-character"),
        ({"WECHAT_MESSAGE_MODE": "secure"}, "plain, compatible or safe"),
        ({"WECHAT_MESSAGE_MODE": "safe", "WECHAT_TOKEN": ""}, "WECHAT_TOKEN"),
        ({"WECHAT_SIGNATURE_MAX_AGE": 0}, "WECHAT_SIGNATURE_MAX_AGE"),
        ({"TESTING": False, "SECRET_KEY": "dev-only-change-me"}, "SECRET_KEY"),
    ],
)
def test_misconfiguration_stops_the_app_at_start(
    database_url: str, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        create_app(make_config(database_url, **settings))


def test_plain_mode_needs_no_key(make_app: Callable[..., Flask]) -> None:
    app = make_app(WECHAT_MESSAGE_MODE="", WECHAT_ENCODING_AES_KEY="", WECHAT_APP_ID="")
    wechat = FakeWeChat(app.test_client())
    assert wechat.reply(wechat.event("o_plain", "subscribe"))["MsgType"] == "text"


# --- Every event gets a sensible answer or success ----------------------------------------------

POPUP = (
    "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0M]]></TemplateId>"
    "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>"
    "<PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>"
)


@pytest.mark.parametrize(
    ("event", "extra"),
    [
        ("subscribe_msg_popup_event", POPUP),
        (
            "subscribe_msg_change_event",
            "<SubscribeMsgChangeEvent><List/></SubscribeMsgChangeEvent>",
        ),
        ("subscribe_msg_sent_event", "<SubscribeMsgSentEvent><List/></SubscribeMsgSentEvent>"),
        ("ENTER", ""),
        (
            "LOCATION",
            "<Latitude>23.1</Latitude><Longitude>113.3</Longitude><Precision>1</Precision>",
        ),
        ("TEMPLATESENDJOBFINISH", "<Status><![CDATA[success]]></Status>"),
        ("scancode_push", "<ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo>"),
        ("user_scan_product_async", ""),
        ("some_event_wechat_adds_next_year", "<Whatever>1</Whatever>"),
    ],
)
def test_events_without_an_answer_get_success(
    client: FlaskClient, wechat: FakeWeChat, event: str, extra: str
) -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_kefu_test]]></ToUserName>"
        f"<FromUserName><![CDATA[o_evt]]></FromUserName><CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )
    response = wechat.post(body)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"
    assert UNSUPPORTED not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("event", "key"),
    [("subscribe", "scanbarcode|EAN13|6901234567892|"), ("subscribe_scan_product", "")],
)
def test_following_by_scanning_a_product_greets_and_is_no_scene(
    app: Flask, wechat: FakeWeChat, event: str, key: str
) -> None:
    reply = wechat.reply(wechat.event("o_product", event, key=key))
    assert "人工" in reply["Content"] and UNSUPPORTED not in reply["Content"]
    with app.app_context():
        subscriber = db.session.get(Subscriber, "o_product")
        assert subscriber is not None and subscriber.scene is None


def test_only_qrscene_keys_are_scenes(app: Flask, wechat: FakeWeChat) -> None:
    wechat.event("o_keys", "subscribe", key="last_trade_no_4200000")
    with app.app_context():
        subscriber = db.session.get(Subscriber, "o_keys")
        assert subscriber is not None and subscriber.scene is None
    wechat.event("o_keys2", "subscribe", key="qrscene_dealer_42")
    with app.app_context():
        subscriber = db.session.get(Subscriber, "o_keys2")
        assert subscriber is not None and subscriber.scene == "dealer_42"


def make_device(app: Flask) -> tuple[int, str, str]:
    """One camera device: its id, token and serial."""
    with app.app_context():
        series = Series(code="C", name="C 系列", name_en="C", category="camera", warranty_months=24)
        model = ProductModel(code="AS-C3H", name="C3H 室外摄像头", name_en="C3H", series=series)
        device = Device(serial="AS2024000123", model=model)
        db.session.add(device)
        db.session.commit()
        return device.id, device.token, device.serial


def scan_waitmsg(wechat: FakeWeChat, openid: str, result: str) -> TestResponse:
    """The menu's scan-and-wait button reporting ``result``."""
    info = (
        "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
        f"<ScanResult><![CDATA[{result}]]></ScanResult></ScanCodeInfo>"
    )
    body = (
        "<xml><ToUserName><![CDATA[gh_kefu_test]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{int(time.time())}"
        "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[MENU_SCAN]]></EventKey>"
        f"{info}</xml>"
    )
    return wechat.post(body)


def test_scanning_a_device_label_makes_it_the_current_device(
    app: Flask, wechat: FakeWeChat
) -> None:
    device_id, token, serial = make_device(app)
    link = f"https://kefu.example.com/d/{token}"
    reply = wechat.reply(scan_waitmsg(wechat, "o_scan", link))
    assert "C3H 室外摄像头" in reply["Content"] and serial[-4:] in reply["Content"]
    assert serial not in reply["Content"]  # only the tail of the serial is shown
    with app.app_context():
        assert dialog.current_device("o_scan") == device_id
        transcript = " ".join(db.session.scalars(select(ChatMessage.text)))
        assert token not in transcript  # the link is a capability; the transcript never has it
    other = wechat.reply(scan_waitmsg(wechat, "o_scan2", "https://evil.example.com/d/" + token))
    assert "不是" in other["Content"]
    unknown = wechat.reply(scan_waitmsg(wechat, "o_scan2", "https://kefu.example.com/d/nope"))
    assert "不是" in unknown["Content"]
    with app.app_context():
        assert dialog.current_device("o_scan2") is None


def test_set_device_is_kept_and_forgotten_on_unfollow(app: Flask, wechat: FakeWeChat) -> None:
    device_id, _, _ = make_device(app)
    with app.app_context():
        dialog.set_device("o_dev", device_id)
        db.session.commit()
        assert dialog.current_device("o_dev") == device_id
        conv = db.session.get(Conversation, "o_dev")
        assert conv is not None and conv.device_at is not None
    wechat.event("o_dev", "unsubscribe")
    with app.app_context():
        assert dialog.current_device("o_dev") is None


def test_long_event_keys_work_on_postgresql(app: Flask, wechat: FakeWeChat) -> None:
    click_key = "K" * 128  # the longest CLICK key WeChat allows
    reply = wechat.reply(wechat.event("o_long", "CLICK", key=click_key))
    assert reply["MsgType"] == "text"
    url = "https://kefu.example.com/help?" + "a" * (1024 - 31)
    view = wechat.event("o_long", "VIEW", key=url)
    assert view.status_code == 200 and view.get_data(as_text=True) == "success"
    again = wechat.event("o_long", "VIEW", key=url, create_time=1700000000)
    assert again.status_code == 200
    with app.app_context():
        assert count(InboundMessage) == 3
        assert f"[菜单] {click_key}" in db.session.scalars(select(ChatMessage.text)).all()


# --- Replies are built with escaping ------------------------------------------------------------


def reply_fields(xml: str) -> tuple[ElementTree.Element, dict[str, str]]:
    """The parsed reply and its top-level fields (each must appear once)."""
    root = ElementTree.fromstring(xml)
    tags = [child.tag for child in root]
    assert len(tags) == len(set(tags)), tags
    return root, {child.tag: child.text or "" for child in root}


def test_kb_answer_with_cdata_end_cannot_change_the_reply(
    make_app: Callable[..., Flask], tmp_path: Any
) -> None:
    app = make_app(WECHAT_MENU_KEYS={"MENU_EVIL": "kb:evil"})
    answer = "先断电]]></Content><MsgType><![CDATA[news]]></MsgType><Content><![CDATA[再重启"
    path = tmp_path / "kb.jsonl"
    path.write_text(
        '{"id": "evil", "question": "重启", "answer": ' + _json(answer) + "}\n", "utf-8"
    )
    result = app.test_cli_runner().invoke(args=["kb", "import", str(path)])
    assert result.exit_code == 0, result.output
    load_index(app)
    wechat = FakeWeChat(app.test_client())
    response = wechat.event("o_kb", "CLICK", key="MENU_EVIL")
    _, fields = reply_fields(response.get_data(as_text=True))
    assert fields["MsgType"] == "text"
    assert fields["Content"] == answer
    assert fields["ToUserName"] == "o_kb"


def _json(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def test_forged_from_user_name_cannot_change_the_reply(wechat: FakeWeChat) -> None:
    forged = "o]]></ToUserName><MsgType>news</MsgType><ToUserName>o_victim"
    escaped = forged.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        "<xml><ToUserName>gh_kefu_test</ToUserName>"
        f"<FromUserName>{escaped}</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType>event</MsgType><Event>subscribe</Event></xml>"
    )
    response = wechat.post(body)
    assert response.status_code == 200
    _, fields = reply_fields(response.get_data(as_text=True))
    assert fields["ToUserName"] == forged
    assert fields["MsgType"] == "text"


def test_rendered_replies_escape_everything() -> None:
    inbound = Inbound(kind="text", openid="o]]><x>", account="gh_<a>&", create_time=1, nonce="1")
    root, fields = reply_fields(text_reply(inbound, "a]]>b<c>&d\x00\x07e"))
    assert fields["ToUserName"] == "o]]><x>" and fields["FromUserName"] == "gh_<a>&"
    assert fields["Content"] == "a]]>b<c>&de"  # characters XML cannot carry are dropped
    root, fields = reply_fields(transfer_reply(inbound, "kf]]><y>@gh"))
    assert fields["MsgType"] == "transfer_customer_service"
    assert root.findtext("TransInfo/KfAccount") == "kf]]><y>@gh"


def test_sealed_reply_round_trips() -> None:
    endpoint = Endpoint(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID, MessageMode.SAFE)
    inbound = Inbound(
        kind="text", openid="o", account="gh", create_time=1, encrypted=True, nonce="42"
    )
    sealed = endpoint.seal(inbound, text_reply(inbound, "你好]]>"))
    tree = ElementTree.fromstring(sealed)
    wechat = FakeWeChat(None, True)  # type: ignore[arg-type]
    plain = wechat.crypto.decrypt_message(
        sealed, tree.findtext("MsgSignature"), tree.findtext("TimeStamp"), tree.findtext("Nonce")
    )
    assert ElementTree.fromstring(plain).findtext("Content") == "你好]]>"


# --- Hostile input never becomes a 5xx ----------------------------------------------------------

HOSTILE: dict[str, bytes] = {
    "nested_1000_in_content": (
        "<xml><ToUserName>a</ToUserName><FromUserName>o_h</FromUserName><MsgType>text</MsgType>"
        "<MsgId>901</MsgId><Content>" + "<a>" * 1000 + "x" + "</a>" * 1000 + "</Content></xml>"
    ).encode(),
    "nested_1000_top": (b"<xml>" + b"<a>" * 1000 + b"</a>" * 1000 + b"</xml>"),
    "nested_100000": (b"<xml>" + b"<a>" * 100000 + b"</a>" * 100000 + b"</xml>"),
    "nul_in_content": (
        b"<xml><FromUserName>o_h</FromUserName><MsgType>text</MsgType>"
        b"<Content>a\x00b</Content></xml>"
    ),
    "nul_in_openid": b"<xml><FromUserName>o\x00h</FromUserName><MsgType>text</MsgType></xml>",
    "billion_laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
        + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
        + b"]><xml><FromUserName>o_h</FromUserName><MsgType>text</MsgType>"
        b"<Content>&lol9;</Content></xml>"
    ),
    "external_entity": (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><FromUserName>o_h</FromUserName><MsgType>text</MsgType><Content>&e;</Content></xml>"
    ),
    "dtd_only": (
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml><FromUserName>o_h</FromUserName>'
        b"<MsgType>text</MsgType></xml>"
    ),
    "huge_msgid": (
        b"<xml><FromUserName>o_h</FromUserName><MsgType>text</MsgType><Content>hi</Content>"
        b"<MsgId>" + b"9" * 5000 + b"</MsgId></xml>"
    ),
    "long_openid": (
        b"<xml><FromUserName>" + b"o" * 65 + b"</FromUserName><MsgType>text</MsgType></xml>"
    ),
    "not_utf8": b"<xml><FromUserName>\xff\xfe</FromUserName><MsgType>text</MsgType></xml>",
    "wrong_root": b"<html><FromUserName>o_h</FromUserName><MsgType>text</MsgType></html>",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_get_success(app: Flask, wechat: FakeWeChat, name: str) -> None:
    response = wechat.post(HOSTILE[name])
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"
    with app.app_context():
        assert count(ChatMessage) == 0 and count(InboundMessage) == 0


def test_hostile_encrypted_envelopes_never_5xx(client: FlaskClient, wechat: FakeWeChat) -> None:
    for envelope in [
        b"<xml>" + b"<a>" * 1000 + b"</a>" * 1000 + b"</xml>",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>',
        b"<xml><Encrypt>\x00</Encrypt></xml>",
        b"<xml><Encrypt>not base64 at all</Encrypt></xml>",
    ]:
        query = wechat.query() | {"encrypt_type": "aes", "msg_signature": "a" * 40}
        response = client.post("/wechat", query_string=query, data=envelope)
        assert response.status_code in {200, 403}, envelope[:40]


def test_nul_bytes_in_the_query_are_not_a_5xx(client: FlaskClient, wechat: FakeWeChat) -> None:
    for key in ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr"]:
        query = wechat.query() | {key: "1\x002"}
        assert client.post("/wechat", query_string=query, data=b"<xml/>").status_code < 500
        assert client.get("/wechat", query_string=query).status_code < 500


def test_a_900_kb_text_is_capped_before_understanding(
    app: Flask, wechat: FakeWeChat, kb_loaded: None
) -> None:
    load_index(app)
    response = wechat.text("o_huge", "摄像头离线" * 60_000)  # 900 KB of UTF-8
    assert response.status_code == 200
    assert wechat.reply(response)["MsgType"] in {"text", "transfer_customer_service"}
    with app.app_context():
        stored = db.session.scalars(
            select(ChatMessage.text).where(ChatMessage.direction == "in")
        ).one()
        assert 0 < len(stored) <= MAX_TEXT_CHARS


# --- Two first deliveries at once ---------------------------------------------------------------


def test_concurrent_subscribes_of_a_new_user_are_both_processed(
    make_app: Callable[..., Flask],
) -> None:
    workers = [make_app() for _ in range(2)]
    users = [f"o_race{i}" for i in range(8)]
    results: list[tuple[str, int, str]] = []
    barrier = threading.Barrier(2)

    def deliver(worker: Flask, openid: str, create_time: int) -> None:
        wechat = FakeWeChat(worker.test_client())
        barrier.wait(timeout=10)
        response = wechat.event(openid, "subscribe", key="qrscene_s1", create_time=create_time)
        results.append((openid, response.status_code, response.get_data(as_text=True)))

    base = int(time.time())
    for openid in users:
        threads = [
            threading.Thread(target=deliver, args=(worker, openid, base + n))
            for n, worker in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert len(results) == 2 * len(users)
    assert all(status == 200 and "<Content>" in body for _, status, body in results), results
    with workers[0].app_context():
        assert count(Subscriber) == len(users)
        assert count(InboundMessage) == 2 * len(users)
        for openid in users:
            subscriber = db.session.get(Subscriber, openid)
            assert subscriber is not None and subscriber.scene == "s1"
            greetings = db.session.scalars(
                select(ChatMessage).where(ChatMessage.openid == openid)
            ).all()
            assert len(greetings) == 2


def test_safe_mode_reads_long_messages(safe_app: Flask, kb_loaded: None) -> None:
    load_index(safe_app)
    wechat = FakeWeChat(safe_app.test_client(), safe_mode=True)
    question = "我家的摄像头昨天开始一直离线，" * 30  # a long (encrypted) message, read in full
    reply = wechat.reply(wechat.text("o_long_safe", question))
    assert reply["MsgType"] in {"text", "transfer_customer_service"}


def test_an_encrypted_delivery_s_url_cannot_fetch_its_reply_in_plaintext(
    client: FlaskClient, wechat_safe: FakeWeChat
) -> None:
    query = wechat_safe.query()
    xml = subscribe_xml("o_enc", int(time.time()))
    envelope = wechat_safe.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
    tree = ElementTree.fromstring(envelope)
    signed = query | {"encrypt_type": "aes", "msg_signature": tree.findtext("MsgSignature") or ""}
    first = client.post("/wechat", query_string=signed, data=envelope)
    assert first.status_code == 200 and "<Encrypt>" in first.get_data(as_text=True)
    # Compatible mode takes plaintext, but not on the URL of an encrypted delivery.
    replay = client.post("/wechat", query_string=query, data=xml)
    assert replay.status_code == 403
    assert client.post("/wechat", query_string=signed, data=envelope).status_code == 200


def test_nonce_store_down_does_not_lose_messages(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    wechat = FakeWeChat(app.test_client())
    reply = wechat.reply(wechat.event("o_redis_down", "subscribe"))
    assert "人工" in reply["Content"]
