"""Video guidance in Chromium with its fake camera and microphone: the agent starts a call from
a ticket, the customer joins with one tap, media flows both ways through kefu's signalling
(``getStats``), the agent's snapshot is saved to the ticket; and where the camera is refused the
customer's page offers a photo instead, which lands in the conversation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from kefu import audit, staff, video
from kefu.extensions import db
from kefu.video import VideoSession
from tests.conftest import FakeWeChat
from tests.selfservice.conftest import Catalog
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api

from .conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, LiveServer, fits_the_phone, screenshot

PASSWORD = "agent-pass-123"
LAPTOP = {"width": 1280, "height": 800}
SEND = "/cgi-bin/message/custom/send"
LINK_RE = re.compile(r"https?://[^/\s]+(/v/[A-Za-z0-9_-]+)")
# Chromium's synthetic camera and microphone, permission prompts answered yes, and ICE over
# loopback (a host with no other interface).
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
GET_STATS = """async (kind) => {
  const stats = await window.kefuVideo.pc.getStats();
  let out = null;
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === kind) {
      out = { bytes: r.bytesReceived || 0, frames: r.framesReceived || r.framesDecoded || 0,
              packets: r.packetsReceived || 0 };
    }
  });
  return out;
}"""
DENY_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


@pytest.fixture(scope="module")
def media_browser(browser: Browser) -> Iterator[Browser]:
    """A second Chromium of the same Playwright, with the fake camera and microphone."""
    launched = browser.browser_type.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS
    )
    yield launched
    launched.close()


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


def contexts(browser: Browser, *, deny_camera: bool = False) -> tuple[BrowserContext, Page, Page]:
    """The agent's laptop and the customer's phone, each its own browser context."""
    agent_context = browser.new_context(viewport=LAPTOP, locale="zh-CN")
    agent_context.grant_permissions(["microphone", "camera"])
    phone_context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    if deny_camera:
        phone_context.add_init_script(DENY_CAMERA)
    else:
        phone_context.grant_permissions(["camera", "microphone"])
    return agent_context, agent_context.new_page(), phone_context.new_page()


def log_in(page: Page, base: str) -> None:
    """Sign in to the console as alice."""
    page.goto(f"{base}/console/login")
    page.get_by_label("用户名").fill("alice")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}/console/")


def latest_link(api: FakeWeChatApi) -> str:
    """The path of the last video link WeChat was asked to deliver."""
    texts = [b["body"]["text"]["content"] for path, b in api.calls if path == SEND]
    links = [m.group(1) for t in texts for m in [LINK_RE.search(t)] if m]
    assert links, texts
    return links[-1]


def wait_until(page: Page, predicate: str, timeout: float = 15.0) -> None:
    """Poll a predicate in the page (wait_for_function would need 'unsafe-eval' under the CSP)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(50)


STATES = """() => ({
  status: document.getElementById("video-status").dataset.state,
  text: document.getElementById("video-status").textContent,
  ice: window.kefuVideo && window.kefuVideo.pc ? window.kefuVideo.pc.iceConnectionState : null,
  signaling: window.kefuVideo && window.kefuVideo.pc ? window.kefuVideo.pc.signalingState : null
})"""


def both_live(agent: Page, phone: Page, timeout: float = 30.0) -> None:
    """Wait until both pages say the call is live; on a timeout, say where each side was."""
    deadline = time.monotonic() + timeout
    while True:
        sides = {"agent": agent.evaluate(STATES), "customer": phone.evaluate(STATES)}
        if all(side["status"] == "msgLive" for side in sides.values()):
            return
        assert time.monotonic() < deadline, f"the call did not connect: {sides}"
        agent.wait_for_timeout(100)


@dataclass
class CallResult:
    """What the two browsers measured."""

    tap_to_first_frame_ms: float
    agent_video: dict[str, int]
    customer_video: dict[str, int]
    customer_audio: dict[str, int]


def run_call(
    agent: Page, phone: Page, base: str, api: FakeWeChatApi, own_camera: bool
) -> CallResult:
    """From the agent's video panel: the customer joins, media flows both ways; getStats."""
    expect(agent.locator("#video-status")).to_have_attribute("data-state", "msgWaiting")
    if own_camera:
        agent.get_by_role("button", name=re.compile("打开我的摄像头")).click()
        expect(agent.locator("#own-video")).to_be_visible()
        wait_until(agent, "() => window.kefuVideo.offers === 2")  # the offer with the camera
    phone.goto(base + latest_link(api))
    phone.get_by_role("button", name="加入视频").click()
    both_live(agent, phone)
    wait_until(agent, "() => window.kefuVideo.firstFrameAt !== null")
    # Let a second of media through, then read what each side received.
    wait_until(agent, "() => document.getElementById('remote-video').currentTime > 1")
    tap = phone.evaluate("window.kefuVideo.tapAt")
    first = agent.evaluate("window.kefuVideo.firstFrameAt")
    return CallResult(
        tap_to_first_frame_ms=float(first - tap),
        agent_video=agent.evaluate(GET_STATS, "video"),
        customer_video=phone.evaluate(GET_STATS, "video") or {},
        customer_audio=phone.evaluate(GET_STATS, "audio") or {},
    )


def test_a_video_call_from_a_ticket_flows_both_ways_and_a_snapshot_is_kept(
    media_browser: Browser,
    live_server: LiveServer,
    app: Flask,
    wechat_api: FakeWeChatApi,
    catalog: Catalog,
) -> None:
    from tests.console.conftest import new_client, sign_in
    from tests.console.test_tickets import open_from_conversation

    console = new_client(app)
    sign_in(console, "alice")
    number = open_from_conversation(app, FakeWeChat(app.test_client()), console)
    agent_context, agent, phone = contexts(media_browser)
    try:
        log_in(agent, live_server.url)
        agent.goto(f"{live_server.url}/console/t/{number}")
        agent.locator("#video").get_by_role("button", name="视频指导").click()
        expect(agent.locator("#video-delivery")).to_contain_text("已送达微信", timeout=10000)
        result = run_call(agent, phone, live_server.url, wechat_api, own_camera=True)
        screenshot(phone, "video-customer-live")
        assert fits_the_phone(phone)
        # The customer's camera reaches the agent; the agent's camera and microphone reach the
        # customer.
        assert result.agent_video["bytes"] > 0 and result.agent_video["frames"] > 0
        assert result.customer_video["bytes"] > 0 and result.customer_video["frames"] > 0
        assert result.customer_audio["bytes"] > 0
        assert result.tap_to_first_frame_ms > 0

        agent.get_by_role("button", name="截图").click()
        # The agent circles the problem on the frame, then saves it.
        agent.locator("#video-canvas").scroll_into_view_if_needed()
        box = agent.locator("#video-canvas").bounding_box()
        assert box is not None
        agent.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
        agent.mouse.down()
        agent.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2, steps=8)
        agent.mouse.up()
        screenshot(agent, "video-agent-markup")
        agent.get_by_role("button", name="保存截图").click()
        expect(agent.locator("#video-snapshots img")).to_have_count(1)
        screenshot(agent, "video-agent-live")
        agent.get_by_role("button", name="挂断").click()
        # The customer's page learns the call is over.
        expect(phone.locator("#video-status")).to_have_attribute(
            "data-state", "msgEnded", timeout=10000
        )
        agent.goto(f"{live_server.url}/console/t/{number}")
        expect(agent.locator("#video img.thumb")).to_have_count(1)
        with app.app_context():
            found = db.session.scalar(select(VideoSession).order_by(VideoSession.id.desc()))
            assert found is not None and found.ticket is not None
            assert found.ticket.number == number and found.status == "ended"
            assert [m.kind for m in found.media] == ["snapshot"]
            with Image.open(video.media_path(found.media[0])) as shot:
                rgb = shot.convert("RGB")
                row = [rgb.getpixel((x, rgb.height // 2)) for x in range(rgb.width)]
            # The red mark is in the saved picture (the fake camera draws no red).
            assert any(r > 200 and g < 90 and b < 90 for r, g, b in row), row[::40]
            ended = [e for e in audit.history("ticket", number) if e.action == "video.end"]
            assert ended and ended[0].after is not None
            assert ended[0].after["participants"] == ["staff:alice", "customer"]
            assert ended[0].after["connected"] is True
    finally:
        phone.context.close()
        agent_context.close()


def test_a_refused_camera_gets_the_photo_fallback_which_reaches_the_agent(
    media_browser: Browser,
    live_server: LiveServer,
    app: Flask,
    wechat_api: FakeWeChatApi,
    tmp_path: Path,
) -> None:
    user = FakeWeChat(app.test_client())
    user.event("o_cam", "CLICK", key="MENU_HUMAN")
    user.text("o_cam", "门铃接线不知道对不对")
    agent_context, agent, phone = contexts(media_browser, deny_camera=True)
    try:
        log_in(agent, live_server.url)
        agent.locator("#waiting .qrow a").first.click()
        agent.locator("#video").get_by_role("button", name="视频指导").click()
        expect(agent.locator("#video-status")).to_have_attribute("data-state", "msgWaiting")
        phone.goto(live_server.url + latest_link(wechat_api))
        phone.get_by_role("button", name="加入视频").click()
        fallback = phone.locator("#video-fallback")
        expect(fallback).to_be_visible()
        expect(fallback).to_contain_text("没有摄像头权限，无法视频")
        expect(fallback).to_contain_text("拍一张照片或一段短视频")
        screenshot(phone, "video-customer-fallback")
        assert fits_the_phone(phone)
        photo = tmp_path / "doorbell.jpg"
        Image.new("RGB", (320, 240), "orange").save(photo, "JPEG")
        phone.set_input_files("#video-photo", str(photo))
        phone.get_by_role("button", name="发送给客服").click()
        expect(phone.locator("#video-upload-result")).to_contain_text("已发送")
        # The agent's panel learns the call is over; the photo is in the conversation.
        expect(agent.locator("#video-status")).to_have_attribute(
            "data-state", "msgEnded", timeout=10000
        )
        agent.get_by_role("link", name=re.compile(r"会话 #")).click()
        expect(agent.locator("#transcript")).to_contain_text("用户上传了一张照片")
        expect(agent.locator("#video img.thumb")).to_have_count(1)
    finally:
        phone.context.close()
        agent_context.close()


def test_a_recorded_call_needs_consent_and_the_agents_browser_uploads_it(
    media_browser: Browser, live_server: LiveServer, app: Flask, wechat_api: FakeWeChatApi
) -> None:
    app.config["VIDEO_RECORDING"] = True
    user = FakeWeChat(app.test_client())
    user.event("o_rec", "CLICK", key="MENU_HUMAN")
    user.text("o_rec", "录像机的灯一直闪")
    agent_context, agent, phone = contexts(media_browser)
    try:
        log_in(agent, live_server.url)
        agent.locator("#waiting .qrow a").first.click()
        agent.locator("#video").get_by_role("button", name="视频指导").click()
        expect(agent.locator("#video-status")).to_have_attribute("data-state", "msgWaiting")
        phone.goto(live_server.url + latest_link(wechat_api))
        expect(phone.locator("#video-recording-notice")).to_contain_text("本次通话会录像")
        phone.get_by_role("button", name="加入视频").click()
        expect(phone.locator("#video-status")).to_have_attribute("data-state", "msgConsent")
        phone.get_by_label("我同意录像").check()
        phone.get_by_role("button", name="加入视频").click()
        both_live(agent, phone)
        expect(agent.locator("#video-recording-state")).to_contain_text("正在录像")
        agent.wait_for_timeout(5000)  # one 4-second chunk, then the last one on hang-up
        agent.get_by_role("button", name="挂断").click()
        with app.app_context():
            deadline = time.monotonic() + 10
            while True:
                found = db.session.scalar(select(VideoSession).order_by(VideoSession.id.desc()))
                assert found is not None
                chunks = video.recording_chunks(found)
                if len(chunks) >= 2 or time.monotonic() > deadline:
                    break
                db.session.rollback()
                time.sleep(0.2)
            assert found.consent_at is not None and len(chunks) >= 2
            assert [c.seq for c in chunks] == list(range(len(chunks)))
            first = video.media_path(chunks[0]).read_bytes()
            assert first.startswith(b"\x1a\x45\xdf\xa3")  # a WebM file begins here
    finally:
        phone.context.close()
        agent_context.close()
