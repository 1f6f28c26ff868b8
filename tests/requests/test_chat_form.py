"""The request form in chat, end to end through the dialog: one field at a time, checked at once."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import select

from kefu.extensions import db
from kefu.tickets.models import RequestForm, Ticket, TicketState, ValidationRun

from .conftest import Catalog, say

PHONE = "13917384526"


def file_request(app: Flask, catalog: Catalog, u: str) -> str:
    """``u`` reports the in-warranty camera in chat and confirms; the bot's last reply."""
    for text in (
        "报修",
        catalog.in_warranty.serial,
        "画面发黑",
        "张先生",
        PHONE,
        "浙江省杭州市西湖区文三路100号",
    ):
        say(app, u, text)
    return say(app, u, "确认")


def test_a_registered_device_in_six_turns(app: Flask, catalog: Catalog) -> None:
    u = "o_six"
    first = say(app, u, "我要报修")
    assert "设备序列号" in first
    reply = say(app, u, catalog.in_warranty.serial.lower())
    assert "AS-C3H" in reply and "保修至" in reply and "故障" in reply
    assert "怎么称呼" in say(app, u, "晚上画面发黑，红外灯不亮")
    assert "手机号" in say(app, u, "张先生")
    assert "地址" in say(app, u, PHONE)
    summary = say(app, u, "浙江省杭州市西湖区文三路100号3幢501室")
    assert "请核对" in summary and PHONE in summary and "确认" in summary
    done = say(app, u, "确认")
    assert "工单号 KF-" in done and "/t/" in done
    with app.app_context():
        ticket = db.session.scalars(select(Ticket)).one()
        assert ticket.state == TicketState.VALIDATED
        assert ticket.openid == u and ticket.phone == PHONE and ticket.model_code == "AS-C3H"
        assert ticket.fields["dealer"] == {"value": "杭州安居电子", "source": "registry"}
        assert ticket.fields["warranty_status"]["value"] == "in"
        run = db.session.scalars(select(ValidationRun)).one()
        assert run.ok and run.values["chat_turns"] == 7
        assert {"model", "dealer", "warranty_end"} <= set(run.autofilled)
        assert db.session.get(RequestForm, u) is None


def test_a_scanned_device_skips_the_serial(app: Flask, catalog: Catalog) -> None:
    from kefu import dialog

    u = "o_scan"
    with app.app_context():
        dialog.set_device(u, catalog.in_warranty.id)
        db.session.commit()
    first = say(app, u, "报修")
    assert "AS-C3H" in first and "故障" in first and "序列号在设备" not in first
    for text in ("画面模糊看不清", "李红", PHONE, "上海市浦东新区张江路88号2号楼1201室"):
        say(app, u, text)
    done = say(app, u, "确认")
    assert "工单号" in done
    with app.app_context():
        run = db.session.scalars(select(ValidationRun)).one()
        assert run.values["chat_turns"] <= 6


def test_corrections_cancel_and_wrong_answers(app: Flask, catalog: Catalog) -> None:
    u = "o_fix"
    say(app, u, "申请维修")
    wrong = say(app, u, "不知道")
    assert "序列号格式不对" in wrong and "AS2024C3H000001" in wrong
    # Full-width, spaces and the model code in front are all accepted.
    assert "AS-C3H" in say(app, u, "ＡＳ-Ｃ３Ｈ ａｓ２０２４ c3h 000001")
    say(app, u, "设备不通电，指示灯不亮")
    say(app, u, "王五")
    bad = say(app, u, "12345")
    assert "11 位" in bad
    assert "地址" in say(app, u, "１３９ １７３８ ４５２６")
    say(app, u, "北京市海淀区中关村大街1号")
    summary = say(app, u, "改一下电话")
    assert "手机号" in summary
    summary = say(app, u, "13800138123")
    assert "13800138123" in summary and "请核对" in summary
    summary = say(app, u, "地址填错了")
    assert "寄回地址" in summary
    summary = say(app, u, "北京市海淀区中关村大街27号中关村大厦5层")
    assert "中关村大厦" in summary
    assert "已取消" in say(app, u, "取消")
    with app.app_context():
        assert db.session.get(RequestForm, u) is None
        assert db.session.scalar(select(Ticket.id)) is None


def test_form_survives_a_restart_and_another_worker(
    app: Flask, make_app: Callable[..., Flask], catalog: Catalog
) -> None:
    u = "o_restart"
    say(app, u, "报修")
    say(app, u, catalog.in_warranty.serial)
    other = make_app(JOBS_EAGER=True)  # another worker, or the same one after a restart
    assert "怎么称呼" in say(other, u, "录像回放不了")
    assert "手机号" in say(app, u, "赵六")
    third = make_app(JOBS_EAGER=True)
    say(third, u, PHONE)
    say(other, u, "广东省深圳市南山区科技园路1号")
    assert "工单号" in say(third, u, "确认")


def test_a_duplicate_shows_the_open_ticket(app: Flask, catalog: Catalog) -> None:
    u = "o_dup"
    first = file_request(app, catalog, u)
    number = first.split("工单号 ")[1].split("。")[0]
    # Contact details come from the last ticket; the device is the same: the open one is shown.
    say(app, u, "报修")
    reply = say(app, u, catalog.in_warranty.serial)
    assert "怎么称呼" not in reply
    summary = say(app, u, "还是画面发黑")
    assert "请核对" in summary and PHONE in summary
    dup = say(app, u, "确认")
    assert number in dup and "无需重复提交" in dup
    with app.app_context():
        assert len(db.session.scalars(select(Ticket)).all()) == 1


def test_idle_form_is_reminded_then_expires(app: Flask, catalog: Catalog) -> None:
    from datetime import UTC, datetime, timedelta

    from kefu.outbox import OutboxMessage
    from kefu.requests import chat

    u = "o_idle"
    say(app, u, "报修")
    say(app, u, catalog.in_warranty.serial)
    with app.app_context():
        now = datetime.now(UTC)
        assert chat.sweep(now + timedelta(hours=3)) == (1, 0)
        message = db.session.scalars(select(OutboxMessage)).one()
        assert "故障描述" in message.text and "继续" in message.text
        assert chat.sweep(now + timedelta(hours=25)) == (0, 1)
        assert db.session.get(RequestForm, u) is None


def test_someone_else_with_the_same_phone_is_not_shown_the_ticket(
    app: Flask, catalog: Catalog
) -> None:
    number = file_request(app, catalog, "o_owner").split("工单号 ")[1].split("。")[0]
    reply = file_request(app, catalog, "o_other")
    assert "无需重复提交" in reply and number not in reply and "/t/" not in reply


def test_a_resolved_ticket_reopens_for_its_own_chat_only(app: Flask, catalog: Catalog) -> None:
    from kefu import tickets

    number = file_request(app, catalog, "o_owner").split("工单号 ")[1].split("。")[0]
    with app.app_context():
        ticket = db.session.scalars(select(Ticket)).one()
        tickets.transition(ticket, "assigned", "staff:alice")
        tickets.transition(ticket, "resolved", "staff:alice", "已更换主板")
        db.session.commit()
    # Someone who knows the serial and the owner's phone gets a ticket of their own: not the
    # owner's number or link, and the owner's ticket stays resolved.
    reply = file_request(app, catalog, "o_other")
    assert "工单号 KF-" in reply and number not in reply
    with app.app_context():
        other = db.session.scalars(select(Ticket).where(Ticket.openid == "o_other")).one()
        assert (
            db.session.scalars(select(Ticket.state).where(Ticket.number == number)).one()
            == TicketState.RESOLVED
        )
        tickets.transition(other, "closed", "staff:alice", "非本人报修")
        db.session.commit()
    # The owner, having moved, reports it again: the same ticket, sent to the new address.
    say(app, "o_owner", "报修")
    say(app, "o_owner", catalog.in_warranty.serial)
    say(app, "o_owner", "又黑屏了")
    say(app, "o_owner", "改一下地址")
    summary = say(app, "o_owner", "上海市浦东新区张江路88号2号楼1201室")
    assert "张江路88号" in summary
    reopened = say(app, "o_owner", "确认")
    assert number in reopened and "重新打开" in reopened
    with app.app_context():
        rows = {t.openid: t for t in db.session.scalars(select(Ticket))}
        assert len(rows) == 2 and rows["o_other"].number != number
        own = rows["o_owner"]
        assert own.state == TicketState.VALIDATED and own.reopened == 1
        assert own.address.startswith("上海市浦东新区张江路88号") and "又黑屏了" in own.fault


def test_two_workers_at_the_same_moment_take_turns(
    app: Flask, make_app: Callable[..., Flask], catalog: Catalog
) -> None:
    """Two deliveries of one user hit two workers at once: handled one after the other."""
    import threading

    u = "o_race"
    say(app, u, "报修")
    say(app, u, catalog.in_warranty.serial)
    workers = [make_app(JOBS_EAGER=True), make_app(JOBS_EAGER=True)]
    replies: dict[str, str] = {}
    start = threading.Barrier(2)

    def deliver(worker: Flask, text: str) -> None:
        start.wait()
        replies[text] = say(worker, u, text)

    threads = [
        threading.Thread(target=deliver, args=(workers[0], "画面发黑")),
        threading.Thread(target=deliver, args=(workers[1], "张先生")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(replies) == {"画面发黑", "张先生"}
    with app.app_context():
        form = db.session.get(RequestForm, u)
        # Whichever came first was the fault, the other the next answer: nothing lost.
        assert form.turns == 4 and "fault" in form.values
        assert form.values.get("contact_name") == "张先生" or form.values["fault"] == "张先生"
