"""The staff console in Chromium on a laptop (and its conversation page on a phone): a handoff
arrives live, the agent replies through the fake WeChat API and hands back; a ticket is
escalated and resolved; an unanswered question becomes an alternate the bot then answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect

from kefu import staff, tickets
from kefu.extensions import db
from kefu.models import KbEntry, UnansweredQuestion
from tests.conftest import FakeWeChat
from tests.selfservice.conftest import Catalog
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api

from .conftest import LiveServer, fits_the_phone, screenshot

PASSWORD = "agent-pass-123"
LAPTOP = {"width": 1280, "height": 800}
SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def wechat_api(app: Flask) -> Iterator[FakeWeChatApi]:
    """Jobs at once, agents always on duty, WeChat's API faked on loopback; an agent account."""
    app.config.update(CONSOLE_DUTY_HOURS="00:00-24:00", JOBS_EAGER=True)
    with serve_fake_wechat_api() as api:
        app.config["WECHAT_API_BASE_URL"] = api.url
        with app.app_context():
            member = staff.create("alice", PASSWORD, "agent", "王小丽")
            member.on_duty = True
            db.session.commit()
        yield api


@pytest.fixture
def laptop(browser: Browser) -> Iterator[Page]:
    """A laptop-sized page, Chinese locale."""
    context: BrowserContext = browser.new_context(viewport=LAPTOP, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


def log_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/console/login")
    page.get_by_label("用户名").fill("alice")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{server.url}/console/")


def texts_sent(api: FakeWeChatApi) -> list[str]:
    return [b["body"]["text"]["content"] for path, b in api.calls if path == SEND]


def test_a_handoff_arrives_live_the_agent_replies_and_hands_back(
    laptop: Page, live_server: LiveServer, app: Flask, wechat_api: FakeWeChatApi
) -> None:
    log_in(laptop, live_server)
    expect(laptop.locator("#waiting")).to_contain_text("现在没有人在排队")
    user = FakeWeChat(app.test_client())
    user.event("o_live", "CLICK", key="MENU_HUMAN")  # the menu's "talk to a person"
    user.text("o_live", "摄像头晚上一直离线")
    # No reload: the page's polling brings the new conversation in.
    row = laptop.locator("#waiting .qrow").first
    expect(row).to_contain_text("菜单转人工", timeout=10000)
    expect(laptop.locator("#waiting-count")).to_have_text("1")
    screenshot(laptop, "console-queue-live")
    row.locator("a").click()
    expect(laptop.locator("#transcript")).to_contain_text("摄像头晚上一直离线")
    laptop.get_by_role("button", name="接入").click()
    laptop.get_by_label("回复用户").fill("您好，我是客服小丽，请问设备型号是？")
    laptop.get_by_role("button", name="发送").click()
    agent_line = laptop.locator("#transcript .from-agent").last
    expect(agent_line).to_contain_text("请问设备型号是")
    expect(agent_line.locator(".delivery")).to_contain_text("已送达微信")
    assert texts_sent(wechat_api)[-1] == "您好，我是客服小丽，请问设备型号是？"
    # The user answers in WeChat; the bot stays quiet and the line appears for the agent.
    assert user.text("o_live", "C3H 室外那款").get_data(as_text=True) == "success"
    expect(laptop.locator("#transcript")).to_contain_text("C3H 室外那款", timeout=10000)
    screenshot(laptop, "console-conversation")
    laptop.get_by_role("button", name="交还机器人").click()
    laptop.wait_for_url(f"{live_server.url}/console/")
    expect(laptop.locator(".flash.ok")).to_contain_text("已交还机器人")
    assert "本次人工服务已结束" in texts_sent(wechat_api)[-1]


def test_a_window_closed_reply_is_shown_on_a_phone(
    phone: Page, live_server: LiveServer, app: Flask, wechat_api: FakeWeChatApi
) -> None:
    log_in(phone, live_server)
    user = FakeWeChat(app.test_client())
    user.event("o_phone", "CLICK", key="MENU_HUMAN")
    phone.reload()
    phone.locator("#waiting .qrow a").first.click()
    wechat_api.errors[SEND] = [45015]
    phone.get_by_label("回复用户").fill("还在吗？")
    phone.get_by_role("button", name="发送").click()
    expect(phone.locator("#transcript .from-agent .delivery").last).to_contain_text("45015")
    assert fits_the_phone(phone)
    screenshot(phone, "console-conversation-phone-45015")


def test_a_ticket_is_escalated_and_resolved(
    laptop: Page,
    live_server: LiveServer,
    app: Flask,
    wechat_api: FakeWeChatApi,
    catalog: Catalog,
) -> None:
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid=None,
            serial="AS2024C3H000001",
            model_code="AS-C3H",
            fault="晚上画面发黑",
            device_id=catalog.in_warranty.id,
        )
        number = ticket.number
        db.session.commit()
    log_in(laptop, live_server)
    laptop.get_by_role("link", name="工单").first.click()
    laptop.get_by_role("link", name=number).click()
    laptop.locator(".action-assign").get_by_role("button", name="分配").click()
    expect(laptop.locator(".flash.ok")).to_contain_text("已分配给 王小丽")
    laptop.locator(".action-level").get_by_label("级别").select_option("L3")
    laptop.locator(".action-level").get_by_role("button", name="改级别").click()
    # The note is required: the browser refuses to submit without it.
    expect(laptop.locator("#ticket-level")).to_have_text("L2")
    laptop.get_by_label("原因（必填）").fill("二线无法复现，转专家组")
    laptop.locator(".action-level").get_by_role("button", name="改级别").click()
    expect(laptop.locator("#ticket-level")).to_have_text("L3")
    laptop.get_by_label("处理结果（发给客户）").fill("已远程升级固件")
    laptop.locator(".action-resolve").get_by_role("button", name="解决").click()
    expect(laptop.locator("#ticket-state")).to_have_text("已解决")
    expect(laptop.locator(".audit")).to_contain_text("ticket.level")
    screenshot(laptop, "console-ticket-resolved")


def test_an_unanswered_question_becomes_an_alternate_and_the_bot_answers_it(
    laptop: Page, live_server: LiveServer, app: Flask, wechat_api: FakeWeChatApi
) -> None:
    answer = "请长按设备复位键 5 秒，听到提示音后在 App 中重新添加设备。"
    with app.app_context():
        db.session.add(
            KbEntry(
                id="camera_reset",
                question="摄像头怎么恢复出厂设置？",
                alternates=[],
                answer=answer,
                audience="all",
                tags=["复位"],
            )
        )
        for _ in range(3):
            db.session.add(
                UnansweredQuestion(text="机器咋整回最开始的样子", created_at=datetime.now(UTC))
            )
        from kefu import kb

        kb.bump_revision()
        db.session.commit()
    log_in(laptop, live_server)
    laptop.get_by_role("link", name="未答问题").click()
    group = laptop.locator(".unanswered .group").first
    expect(group).to_contain_text("机器咋整回最开始的样子")
    group.get_by_label("加为条目的问法").fill("camera_reset")
    group.get_by_role("button", name="加为问法").click()
    expect(laptop.locator(".flash.ok")).to_contain_text("摄像头怎么恢复出厂设置？")
    screenshot(laptop, "console-unanswered-alternate")
    user = FakeWeChat(app.test_client())
    reply = user.reply(user.text("o_kb", "机器咋整回最开始的样子"))
    assert reply["Content"] == answer
