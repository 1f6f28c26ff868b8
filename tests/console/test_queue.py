"""Handoffs in console mode: the user is told, the bot stays quiet, the queue shows it live;
agents claim, reply through WeChat's customer-service API, and hand back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from kefu import handoffs
from kefu.extensions import db
from kefu.models import ChatMessage, Conversation, Handoff
from kefu.outbox import OutboxMessage
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import (
    SEND,
    deliver,
    form_token,
    hand_off,
    make_staff,
    new_client,
    sent_texts,
    sign_in,
)


def test_handoff_tells_the_user_who_is_coming_and_the_bot_then_stays_quiet(
    app: Flask, wechat: FakeWeChat, agent: int
) -> None:
    wechat.text("o_a", "摄像头离线了")
    reply = wechat.reply(wechat.text("o_a", "转人工"))
    assert reply["MsgType"] == "text"
    assert "人工客服" in reply["Content"] and "分钟" in reply["Content"]
    assert "人工服务时间：每天 00:00-24:00" in reply["Content"]
    # While waiting the bot says nothing, and what the user writes is kept for the agent.
    quiet = wechat.text("o_a", "我家的是 C3H，昨天开始离线")
    assert quiet.get_data(as_text=True) == "success"
    with app.app_context():
        lines = db.session.scalars(
            select(ChatMessage.text).where(ChatMessage.openid == "o_a").order_by(ChatMessage.id)
        ).all()
        [handoff] = db.session.scalars(select(Handoff)).all()
        assert handoff.reason == "requested" and handoff.status == "open"
        # Routed and offered to the on-duty agent of its group, not yet claimed.
        assert handoff.assignee_id == agent and handoff.claimed_at is None
    assert lines[-1] == "我家的是 C3H，昨天开始离线"
    assert any("人工客服" in line for line in lines)


def test_outside_duty_hours_the_user_learns_when_someone_answers(
    app: Flask, wechat: FakeWeChat
) -> None:
    with app.app_context():
        now = datetime.now(UTC).astimezone(handoffs.duty().tz)
    start = (now + timedelta(hours=2)).strftime("%H:00")
    end = (now + timedelta(hours=3)).strftime("%H:00")
    if start > end:  # around midnight: pick a window that cannot contain now
        start, end = "00:00", "00:01"
    app.config["CONSOLE_DUTY_HOURS"] = f"{start}-{end}"
    reply = wechat.reply(wechat.event("o_night", "CLICK", key="MENU_HUMAN"))
    assert "休息时间" in reply["Content"] and "您的消息已保存" in reply["Content"]
    assert start in reply["Content"]


def test_a_user_who_no_longer_wants_a_person_gets_the_bot_back_until_an_agent_takes_it(
    app: Flask, wechat: FakeWeChat, console: FlaskClient, kb_loaded: None
) -> None:
    waiting = hand_off(app, wechat)
    # Nobody has taken it: "不用人工了" closes the request and the bot answers again.
    back = wechat.reply(wechat.text(waiting.openid, "不用人工了"))
    assert "已取消人工服务" in back["Content"]
    assert console.get("/console/queue.json").get_json()["waiting"] == []
    answer = wechat.reply(wechat.text(waiting.openid, "画面是倒的怎么调"))
    assert "画面翻转" in answer["Content"]
    with app.app_context():
        handoff = db.session.get(Handoff, waiting.handoff_id)
        assert handoff.status == "closed" and handoff.closed_reason == "withdrawn"
    # Once an agent has claimed the conversation, "取消" is a message for that agent.
    assert "人工客服" in wechat.reply(wechat.text(waiting.openid, "转人工"))["Content"]
    with app.app_context():
        again = db.session.scalar(select(Handoff.id).where(Handoff.status == "open"))
    url = f"/console/c/{again}"
    console.post(url + "/claim", data={"csrf_token": form_token(console, url)})
    assert wechat.text(waiting.openid, "取消").get_data(as_text=True) == "success"
    with app.app_context():
        assert db.session.get(Handoff, again).status == "open"


def test_the_queue_shows_waiting_conversations_oldest_first_with_reason_and_sla(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    first = hand_off(app, wechat, "o_first")
    with app.app_context():
        from kefu import dialog

        # The understanding layer decides "angry" (its own tests); here the dialog is told so.
        dialog.hand_off(dialog._conversation("o_second"), "angry", datetime.now(UTC))
        db.session.commit()
    page = console.get("/console/").get_data(as_text=True)
    assert "菜单转人工" in page and "情绪不满/投诉" in page
    assert page.index("菜单转人工") < page.index("情绪不满/投诉")
    state = console.get("/console/queue.json").get_json()
    assert [r["reason"] for r in state["waiting"]] == ["menu", "angry"]
    assert state["waiting"][0]["id"] == first.handoff_id
    assert state["waiting"][0]["sla"] == "ok"
    assert state["waiting"][0]["last_message"]["text"] == "你好，我的摄像头一直离线"


def test_polling_with_a_cursor_misses_nothing_across_a_reconnect(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    cursor = console.get("/console/queue.json").get_json()["cursor"]
    # Two handoffs arrive while the page is offline; the next poll names both as new.
    a = hand_off(app, wechat, "o_r1")
    b = hand_off(app, wechat, "o_r2")
    state = console.get(f"/console/queue.json?since={cursor}").get_json()
    assert state["new"] == [a.handoff_id, b.handoff_id]
    assert {r["id"] for r in state["waiting"]} == {a.handoff_id, b.handoff_id}
    again = console.get(f"/console/queue.json?since={state['cursor']}").get_json()
    assert again["new"] == [] and len(again["waiting"]) == 2


def test_claim_reply_through_wechat_and_hand_back(
    app: Flask, wechat: FakeWeChat, console: FlaskClient, wechat_api: FakeWeChatApi
) -> None:
    waiting = hand_off(app, wechat)
    url = f"/console/c/{waiting.handoff_id}"
    page = console.get(url).get_data(as_text=True)
    assert "你好，我的摄像头一直离线" in page and "48小时窗口" in page
    token = form_token(console, url)
    assert console.post(url + "/claim", data={"csrf_token": token}).status_code == 302
    assert console.get("/console/queue.json").get_json()["waiting"] == []
    sent = console.post(url + "/reply", data={"csrf_token": token, "text": "您好，我是客服小王"})
    assert sent.status_code == 302
    deliver(app)
    assert sent_texts(wechat_api, waiting.openid) == ["您好，我是客服小王"]
    lines = console.get(url + "/poll.json").get_json()["lines"]
    mine = [line for line in lines if line["from"] == "agent"]
    assert mine[0]["text"] == "您好，我是客服小王" and mine[0]["delivery"] == "sent"
    assert mine[0]["agent"] == "Alice"
    # The user answers; the agent sees it, the bot does not reply.
    assert wechat.text(waiting.openid, "好的谢谢").get_data(as_text=True) == "success"
    assert any(
        line["text"] == "好的谢谢" and line["from"] == "user"
        for line in console.get(url + "/poll.json").get_json()["lines"]
    )
    back = console.post(url + "/close", data={"csrf_token": token})
    assert back.status_code == 302 and back.headers["Location"].endswith("/console/")
    deliver(app)
    assert "本次人工服务已结束" in sent_texts(wechat_api, waiting.openid)[-1]
    with app.app_context():
        handoff = db.session.get(Handoff, waiting.handoff_id)
        assert handoff.status == "closed" and handoff.closed_reason == "agent"
        assert handoff.first_response_at is not None
        assert db.session.get(Conversation, waiting.openid).human_since is None
        from kefu.audit import AuditEntry

        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_type == "handoff")
        ).all()
    assert {"handoff.claim", "handoff.reply", "handoff.close"} <= set(actions)


def test_a_closed_window_45015_is_shown_to_the_agent(
    app: Flask, wechat: FakeWeChat, console: FlaskClient, wechat_api: FakeWeChatApi
) -> None:
    waiting = hand_off(app, wechat)
    wechat_api.errors[SEND] = [45015]
    url = f"/console/c/{waiting.handoff_id}"
    token = form_token(console, url)
    console.post(url + "/reply", data={"csrf_token": token, "text": "还在吗？"})
    deliver(app)
    lines = console.get(url + "/poll.json").get_json()["lines"]
    [line] = [line for line in lines if line["from"] == "agent"]
    assert line["delivery"] == "final" and line["error_code"] == 45015
    assert "45015" in line["delivery_label"]
    assert "45015" in console.get(url).get_data(as_text=True)


def test_the_window_and_what_to_do_when_it_is_closed(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    waiting = hand_off(app, wechat)
    with app.app_context():
        old = datetime.now(UTC) - timedelta(hours=49)
        for line in db.session.scalars(
            select(ChatMessage).where(ChatMessage.openid == waiting.openid)
        ):
            line.created_at = old
        db.session.commit()
    page = console.get(f"/console/c/{waiting.handoff_id}").get_data(as_text=True)
    assert "48小时窗口已关闭" in page and "打电话" in page


def test_assign_to_a_colleague_and_see_who_else_is_viewing(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    bob_id = make_staff(app, "bob")
    bob = new_client(app)
    sign_in(bob, "bob")
    waiting = hand_off(app, wechat)
    url = f"/console/c/{waiting.handoff_id}"
    bob.get(url)
    assert "Bob" in console.get(url).get_data(as_text=True)
    assert console.get(url + "/poll.json").get_json()["viewers"] == ["Bob"]
    assert console.get("/console/queue.json").get_json()["waiting"][0]["viewers"] == [
        "Alice",
        "Bob",
    ]
    token = form_token(console, url)
    console.post(url + "/assign", data={"csrf_token": token, "staff_id": str(bob_id)})
    with app.app_context():
        handoff = db.session.get(Handoff, waiting.handoff_id)
        assert handoff.assignee_id == bob_id and handoff.claimed_at is not None
    mine = bob.get("/console/queue.json").get_json()["mine"]
    assert [r["id"] for r in mine] == [waiting.handoff_id]


def test_overdue_conversations_are_flagged_and_the_user_told_again(
    app: Flask, wechat: FakeWeChat, agent: int
) -> None:
    waiting = hand_off(app, wechat)
    later = datetime.now(UTC) + timedelta(minutes=app.config["HANDOFF_PICKUP_MINUTES"] + 1)
    with app.app_context():
        done = handoffs.sweep(later)
        db.session.commit()
        handoff = db.session.get(Handoff, waiting.handoff_id)
        assert done["overdue"] == 1 and handoff.overdue_at is not None
        assert handoffs.sla(handoff, later) == "overdue"
        notices = db.session.scalars(
            select(OutboxMessage.text).where(OutboxMessage.purpose == "handoff_overdue")
        ).all()
        assert len(notices) == 1 and "久等" in notices[0]
        # Told once, not on every sweep.
        assert handoffs.sweep(later + timedelta(minutes=1))["overdue"] == 0


def test_an_unclaimed_offer_moves_to_the_next_agent_in_turn(
    app: Flask, wechat: FakeWeChat, agent: int
) -> None:
    bob = make_staff(app, "bob")
    first = hand_off(app, wechat, "o_rr1")
    second = hand_off(app, wechat, "o_rr2")
    with app.app_context():
        offered = [db.session.get(Handoff, w.handoff_id).assignee_id for w in (first, second)]
        assert sorted(offered) == sorted([agent, bob])  # round robin
        later = datetime.now(UTC) + timedelta(minutes=app.config["HANDOFF_REASSIGN_MINUTES"] + 1)
        assert handoffs.sweep(later)["reassigned"] == 2
        db.session.commit()
        moved = [db.session.get(Handoff, w.handoff_id).assignee_id for w in (first, second)]
    assert moved == [offered[1], offered[0]]


def test_an_idle_conversation_goes_back_to_the_bot_and_the_user_is_told(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    waiting = hand_off(app, wechat)
    url = f"/console/c/{waiting.handoff_id}"
    console.post(url + "/claim", data={"csrf_token": form_token(console, url)})
    later = datetime.now(UTC) + timedelta(minutes=app.config["HANDOFF_IDLE_MINUTES"] + 1)
    with app.app_context():
        assert handoffs.sweep(later)["idle"] == 1
        db.session.commit()
        handoff = db.session.get(Handoff, waiting.handoff_id)
        assert handoff.status == "closed" and handoff.closed_reason == "idle"
        assert db.session.get(Conversation, waiting.openid).human_since is None
        told = db.session.scalars(
            select(OutboxMessage.text).where(OutboxMessage.openid == waiting.openid)
        ).all()
    assert any("长时间没有新消息" in t for t in told)


def test_routing_sends_a_verified_installer_to_the_installers_line(
    app: Flask, wechat: FakeWeChat
) -> None:
    from tests.selfservice.conftest import make_installer

    make_staff(app, "carol", groups=["installers"])
    general = make_staff(app, "dave", groups=["general"])
    make_installer(app, openid="o_installer")
    hand_off(app, wechat, "o_installer")
    hand_off(app, wechat, "o_enduser")
    with app.app_context():
        rows = {h.openid: h for h in db.session.scalars(select(Handoff))}
        assert rows["o_installer"].group == "installers"
        assert rows["o_enduser"].group == "general"
        assert rows["o_enduser"].assignee_id == general
        assert handoffs.group_for("nvr", None, "end_user") == "recorders"
        assert handoffs.group_for("lock", "L3", "end_user") == "locks"
        app.config["CONSOLE_ROUTING"] = '[{"level": "onsite", "group": "general"}]'
        assert handoffs.group_for("camera", "onsite", "end_user") == "general"
        assert handoffs.group_for("camera", "L2", "end_user") == "general"


def test_wechat_kf_mode_transfers_and_sends_the_notice_through_the_outbox(
    app: Flask, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    app.config["HANDOFF_MODE"] = "wechat_kf"
    reply = wechat.reply(wechat.event("o_kf", "CLICK", key="MENU_HUMAN"))
    assert reply["MsgType"] == "transfer_customer_service"
    deliver(app)
    [notice] = sent_texts(wechat_api, "o_kf")
    assert "已为您转接人工客服" in notice


def test_a_closed_conversation_refuses_replies_in_the_users_language(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    waiting = hand_off(app, wechat)
    url = f"/console/c/{waiting.handoff_id}"
    token = form_token(console, url)
    console.post(url + "/close", data={"csrf_token": token})
    page = console.post(
        url + "/reply", data={"csrf_token": token, "text": "x"}, follow_redirects=True
    )
    assert page.status_code == 200 and "这个会话已经结束" in page.get_data(as_text=True)
    assert console.get("/console/c/999999").status_code == 404


def test_media_sent_while_waiting_shows_in_the_transcript_and_gets_no_bot_reply(
    app: Flask, wechat: FakeWeChat, console: FlaskClient
) -> None:
    waiting = hand_off(app, wechat)
    response = wechat.send(
        waiting.openid, "image", PicUrl="https://example.com/a.jpg", MediaId="media-1"
    )
    assert response.get_data(as_text=True) == "success"
    lines = console.get(f"/console/c/{waiting.handoff_id}/poll.json").get_json()["lines"]
    assert lines[-1]["text"] == "[图片]" and lines[-1]["from"] == "user"


def test_the_demo_has_a_console_account(app: Flask, runner: FlaskCliRunner) -> None:
    from kefu import staff

    with app.app_context():
        staff.demo(echo=lambda _: None)
        staff.demo(echo=lambda _: None)  # safe to run again
        member = staff.authenticate(staff.DEMO_USERNAME, staff.DEMO_PASSWORD)
        assert member is not None and member.on_duty and "installers" in member.groups


def test_a_45015_closes_the_window_shown_to_the_agent(
    app: Flask, wechat: FakeWeChat, console: FlaskClient, wechat_api: FakeWeChatApi
) -> None:
    waiting = hand_off(app, wechat)
    url = f"/console/c/{waiting.handoff_id}"
    wechat_api.errors[SEND] = [45015]
    console.post(url + "/reply", data={"csrf_token": form_token(console, url), "text": "在吗"})
    assert console.get(url + "/poll.json").get_json()["window_open"] is False
    assert "48小时窗口已关闭" in console.get(url).get_data(as_text=True)
    # The user writes again: the window is open again.
    wechat.text(waiting.openid, "在的")
    assert console.get(url + "/poll.json").get_json()["window_open"] is True


def test_the_sweep_routes_new_tickets_to_the_groups_agents_in_turn(app: Flask, agent: int) -> None:
    from kefu import tickets

    bob = make_staff(app, "bob")
    with app.app_context():
        made = [
            tickets.open_ticket(
                actor="customer",
                values={},
                channel="chat",
                openid=None,
                serial=f"AS2024C3H00000{i}",
                model_code="AS-C3H",
                fault="x",
            )
            for i in range(2)
        ]
        numbers = [t.number for t in made]
        db.session.commit()
        assert handoffs.sweep(datetime.now(UTC))["tickets_routed"] == 2
        db.session.commit()
        routed = [tickets.by_number(n) for n in numbers]
        assert {t.assignee_id for t in routed} == {agent, bob}
        # Offered, not taken: routing is not a response to the customer.
        assert {t.state for t in routed} == {"new"}
        assert all(t.offered_at is not None and t.first_response_at is None for t in routed)


def test_in_wechat_kf_mode_the_sweep_leaves_the_queue_to_wechat_and_ends_idle_sessions(
    app: Flask, wechat: FakeWeChat, agent: int
) -> None:
    app.config["HANDOFF_MODE"] = "wechat_kf"
    wechat.event("o_kf2", "CLICK", key="MENU_HUMAN")
    with app.app_context():
        later = datetime.now(UTC) + timedelta(minutes=app.config["HANDOFF_PICKUP_MINUTES"] + 1)
        assert handoffs.sweep(later)["overdue"] == 0  # WeChat's agents may be on it already
        idle = datetime.now(UTC) + timedelta(minutes=app.config["HANDOFF_IDLE_MINUTES"] + 1)
        assert handoffs.sweep(idle)["idle"] == 1
        db.session.commit()
        [handoff] = db.session.scalars(select(Handoff)).all()
        assert handoff.status == "closed" and handoff.closed_reason == "idle"
        told = db.session.scalars(
            select(OutboxMessage.text).where(OutboxMessage.openid == "o_kf2")
        ).all()
    assert any("长时间没有新消息" in t for t in told)


def test_only_taking_it_back_withdraws_a_request_for_a_person() -> None:
    for text in ("取消", "不用人工了", "算了！", "回到机器人", "Cancel"):
        assert handoffs.withdraws(text), text
    # Asking for a person again, or cancelling something else, keeps the conversation theirs.
    for text in ("人工", "转人工吧", "人工了", "取消订单", "了"):
        assert not handoffs.withdraws(text), text
