"""More ways into and through the chat form: the menu key, a scan, an FAQ in the middle, and a
proof-of-purchase photo read off the reply path."""

from __future__ import annotations

import io

from flask import Flask
from PIL import Image
from sqlalchemy import select

from kefu.extensions import db
from kefu.tickets.models import RequestForm, Ticket
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import Catalog, say, sent_texts

ADDRESS = "浙江省杭州市西湖区文三路100号3幢501室"


def test_the_repair_menu_key_starts_a_request(app: Flask, wechat: FakeWeChat) -> None:
    app.config["WECHAT_MENU_KEYS"] = {"MENU_REPAIR": "repair"}
    reply = wechat.reply(wechat.event("o_menu", "CLICK", "MENU_REPAIR"))
    assert "报修" in reply["Content"] and "序列号" in reply["Content"]
    with app.app_context():
        assert db.session.get(RequestForm, "o_menu").sources["request_type"] == "menu"


def test_a_scan_while_the_form_waits_fills_the_device(
    app: Flask, wechat: FakeWeChat, catalog: Catalog
) -> None:
    u = "o_scan2"
    wechat.text(u, "报修")
    link = f"{app.config['PUBLIC_BASE_URL']}/d/{catalog.in_warranty.token}"
    body = wechat.xml(
        u, "event", {"Event": "scancode_waitmsg", "EventKey": "SCAN", "ScanCodeInfo": ""}, None
    )
    body = body.replace(
        "<ScanCodeInfo><![CDATA[]]></ScanCodeInfo>",
        "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
        f"<ScanResult><![CDATA[{link}]]></ScanResult></ScanCodeInfo>",
    )
    reply = wechat.reply(wechat.post(body))
    assert "AS-C3H" in reply["Content"] and "故障" in reply["Content"]


def test_an_faq_question_in_the_middle_then_back(
    app: Flask, catalog: Catalog, kb_loaded: None
) -> None:
    u = "o_faq"
    say(app, u, "我要报修")
    say(app, u, catalog.in_warranty.serial)
    say(app, u, "画面一直发黑")
    answer = say(app, u, "存储卡最大支持多少G？")
    assert "还没填完" in answer and "怎么称呼" in answer
    assert "怎么称呼" in say(app, u, "继续")
    assert "手机号" in say(app, u, "张先生")


def test_a_warranty_claim_with_a_proof_photo_in_chat(
    app: Flask, wechat: FakeWeChat, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    u = "o_proof"
    receipt = io.BytesIO()
    Image.new("RGB", (800, 1100), (245, 245, 240)).save(receipt, "JPEG")
    fake_api.media["RECEIPT"] = receipt.getvalue()
    fake_api.media["JUNK"] = b"not a photo"
    for text in (
        "申请保修",
        catalog.ship_only.serial,
        "夜视不清楚",
        "李红",
        "13917384526",
        ADDRESS,
    ):
        last = wechat.reply(wechat.text(u, text))["Content"]
    assert "什么时候买" in last
    assert "购买凭证" in wechat.reply(wechat.text(u, "去年三月"))["Content"]
    wechat.send(u, "image", PicUrl="http://x/j.jpg", MediaId="JUNK")
    assert "凭证照片无法使用" in sent_texts(fake_api, u)[-1]
    reply = wechat.reply(wechat.send(u, "image", PicUrl="http://x/r.jpg", MediaId="RECEIPT"))
    assert "正在检查" in reply["Content"]
    assert "已收到" in sent_texts(fake_api, u)[-1] and "请核对" in sent_texts(fake_api, u)[-1]
    assert "工单号" in wechat.reply(wechat.text(u, "确认"))["Content"]
    with app.app_context():
        ticket = db.session.scalars(select(Ticket)).one()
        assert ticket.request_type == "warranty" and ticket.proof_sha256
        assert ticket.purchase_date is not None


def test_typing_the_serial_while_a_photo_is_read_moves_on(app: Flask, catalog: Catalog) -> None:
    u = "o_wait"
    say(app, u, "报修")
    with app.app_context():
        db.session.get(RequestForm, u).pending_media = "LOST"  # its job never came back
        db.session.commit()
    assert "故障" in say(app, u, catalog.in_warranty.serial)
