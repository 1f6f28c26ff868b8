"""Tickets in the console: opened from a conversation, the page, the actions, the queue, CSAT."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kefu import tickets
from kefu.audit import AuditEntry
from kefu.csat import CsatRating
from kefu.extensions import db
from kefu.tickets import Ticket
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import Catalog, form_token, hand_off, make_staff, new_client, sent_texts, sign_in

SERIAL = "AS2024C3H000001"


def open_from_conversation(app: Flask, wechat: FakeWeChat, console: FlaskClient) -> str:
    """A user writes their serial, asks for a person; the agent turns it into a ticket."""
    waiting = hand_off(app, wechat, "o_t1")
    wechat.text("o_t1", f"序列号 {SERIAL} 晚上画面发黑")
    page = console.get(f"/console/c/{waiting.handoff_id}").get_data(as_text=True)
    assert SERIAL in page  # the user's device, from the serial they typed
    form = console.get(f"/console/tickets/new?handoff={waiting.handoff_id}").get_data(as_text=True)
    assert f'value="{SERIAL}"' in form and "晚上画面发黑" in form
    response = console.post(
        "/console/tickets/new",
        data={
            "csrf_token": form_token(console, "/console/tickets/new"),
            "handoff": str(waiting.handoff_id),
            "request_type": "repair",
            "serial": SERIAL,
            "fault": "晚上画面发黑，红外灯不亮",
            "contact_name": "张三丰",
            "phone": "13917384526",
            "address": "浙江省杭州市西湖区文三路1号",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    number = response.headers["Location"].rsplit("/", 1)[-1]
    assert re.match(r"KF-\d{8}-", number)
    return number


def test_a_ticket_from_a_conversation_shows_checks_fields_and_transcript(
    app: Flask, wechat: FakeWeChat, console: FlaskClient, catalog: Catalog
) -> None:
    number = open_from_conversation(app, wechat, console)
    page = console.get(f"/console/t/{number}").get_data(as_text=True)
    assert "校验报告" in page and "serial.registered" in page and "通过" in page
    assert "自动填写" in page  # the model, warranty and dates came from the registry
    assert "晚上画面发黑" in page  # the transcript
    with app.app_context():
        ticket = tickets.by_number(number)
        assert ticket.openid == "o_t1" and ticket.channel == "staff" and ticket.runs
        assert ticket.device is not None and ticket.device.serial == SERIAL


def test_bad_input_on_a_new_ticket_is_explained_and_kept(
    app: Flask, console: FlaskClient, catalog: Catalog
) -> None:
    response = console.post(
        "/console/tickets/new",
        data={
            "csrf_token": form_token(console, "/console/tickets/new"),
            "serial": SERIAL,
            "fault": "坏了",
            "contact_name": "张三",
            "phone": "12",
            "address": "杭州",
        },
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "flash error" in html and f'value="{SERIAL}"' in html
    with app.app_context():
        assert db.session.scalar(select(Ticket.id)) is None


def test_escalate_with_a_required_note_ask_resolve_rate_and_reopen(
    app: Flask,
    wechat: FakeWeChat,
    console: FlaskClient,
    catalog: Catalog,
    wechat_api: FakeWeChatApi,
) -> None:
    number = open_from_conversation(app, wechat, console)
    url = f"/console/t/{number}"
    token = form_token(console, url)

    def act(action: str, **data: str) -> str:
        response = console.post(
            f"{url}/{action}", data={"csrf_token": token, **data}, follow_redirects=True
        )
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "已分配给 Alice" in act("assign", staff_id="me")
    assert "必须写明原因" in act("level", level="L3")
    assert "级别已改为" in act("level", level="L3", note="二线无法复现，转专家组")
    assert "已请客户补充" in act("ask", note="请拍一张设备背面标签的照片")
    assert any("请拍一张设备背面标签的照片" in t for t in sent_texts(wechat_api, "o_t1"))
    assert "内部备注已保存" in act("note", note="客户很着急，优先处理")
    assert "已发送给客户" in act("reply", text="您好，已收到，我们会尽快处理")
    page = act("resolve", note="已远程升级固件，夜视恢复")
    assert "已解决" in page and "客户很着急，优先处理" in page
    texts = sent_texts(wechat_api, "o_t1")
    assert any("请为本次服务打分" in t for t in texts)
    assert not any("客户很着急" in t for t in texts)  # internal notes never reach the customer
    # The customer rates in chat with a digit and a comment.
    reply = wechat.reply(wechat.text("o_t1", "5 师傅很专业"))
    assert reply["Content"] == "感谢您的评价！我们会继续改进服务。"
    with app.app_context():
        ticket = tickets.by_number(number)
        assert ticket.state == "resolved" and ticket.level == "L3"
        rating = db.session.scalar(select(CsatRating).where(CsatRating.ticket_id == ticket.id))
        assert rating.score == 5 and rating.comment == "师傅很专业"
        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == number)
        ).all()
    assert {"ticket.assign", "ticket.level", "ticket.note", "ticket.reply"} <= set(actions)
    assert "★★★★★" in console.get(url).get_data(as_text=True)
    # Asked once: resolving again after a reopen does not ask again.
    assert "已重新打开" in act("reopen", note="客户说又坏了")
    act("resolve")
    asks = [t for t in sent_texts(wechat_api, "o_t1") if "请为本次服务打分" in t]
    assert len(asks) == 1
    assert "已关闭" in act("close")


def test_the_ticket_queue_filters_by_state_level_assignee_and_overdue(
    app: Flask, console: FlaskClient, agent: int, catalog: Catalog
) -> None:
    with app.app_context():
        made = []
        for level in ("L2", "L3", "onsite"):
            made.append(
                tickets.open_ticket(
                    actor="customer",
                    values={},
                    channel="chat",
                    openid=None,
                    serial=SERIAL,
                    model_code="AS-C3H",
                    fault="画面发黑",
                    level=level,
                )
            )
        made[0].assignee_id = agent
        made[2].resolution_due = datetime.now(UTC) - timedelta(hours=1)
        numbers = [t.number for t in made]
        db.session.commit()

    def listed(query: str) -> list[str]:
        html = console.get("/console/tickets" + query).get_data(as_text=True)
        return sorted((n for n in numbers if n in html), key=html.index)

    # Most urgent deadline first: the overdue one, then L2 (due sooner than L3).
    assert listed("") == [numbers[2], numbers[0], numbers[1]]
    assert listed("?level=L3") == [numbers[1]]
    assert listed("?assignee=me") == [numbers[0]]
    assert listed("?assignee=none") == [numbers[2], numbers[1]]
    assert listed("?overdue=1") == [numbers[2]]
    assert listed("?state=closed") == []


def test_a_refused_transition_is_explained(
    app: Flask, console: FlaskClient, catalog: Catalog
) -> None:
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid=None,
            serial=SERIAL,
            model_code="AS-C3H",
            fault="x",
        )
        number = ticket.number
        db.session.commit()
    url = f"/console/t/{number}"
    token = form_token(console, url)
    html = console.post(
        f"{url}/reopen", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "flash error" in html
    assert console.get("/console/t/KF-20260101-0000-0").status_code == 404


def test_escalation_routes_to_the_groups_agent(
    app: Flask, console: FlaskClient, catalog: Catalog
) -> None:
    camera_agent = make_staff(app, "frank", groups=["cameras"])
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid=None,
            serial=SERIAL,
            model_code="AS-C3H",
            fault="x",
            device_id=catalog.in_warranty.id,
        )
        number = ticket.number
        db.session.commit()
    url = f"/console/t/{number}"
    console.post(f"{url}/assign", data={"csrf_token": form_token(console, url), "staff_id": "auto"})
    with app.app_context():
        assert tickets.by_number(number).assignee_id == camera_agent
    other = new_client(app)
    sign_in(other, "frank")
    assert number in other.get("/console/tickets?assignee=me").get_data(as_text=True)


def test_the_proof_photo_is_shown_to_staff_only(
    app: Flask, console: FlaskClient, catalog: Catalog, tmp_path: object
) -> None:
    import io

    from PIL import Image

    from kefu.requests import photos

    app.config["PROOF_ROOT"] = str(tmp_path)
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (250, 250, 250)).save(buffer, "JPEG")
    with app.app_context():
        stored = photos.store(buffer.getvalue())
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid=None,
            serial=SERIAL,
            model_code="AS-C3H",
            fault="x",
            proof_sha256=stored.sha256,
        )
        number = ticket.number
        db.session.commit()
    assert "购买凭证" in console.get(f"/console/t/{number}").get_data(as_text=True)
    photo = console.get(f"/console/t/{number}/proof")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.data.startswith(b"\xff\xd8")
    assert new_client(app).get(f"/console/t/{number}/proof").status_code == 302
