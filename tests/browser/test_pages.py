"""The device page, the installer's view and batch lookup in Chromium on a phone."""

from __future__ import annotations

import csv
import io

from playwright.sync_api import Page, Route, expect

from tests.selfservice.conftest import INSTALLER_PASSWORD, INSTALLER_PHONE, Catalog

from .conftest import LiveServer, fits_the_phone, screenshot


def log_in(page: Page, server: LiveServer, next_path: str) -> None:
    page.goto(f"{server.url}/installer/login?next={next_path}")
    page.get_by_label("手机号").fill(INSTALLER_PHONE)
    page.get_by_label("密码").fill(INSTALLER_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{server.url}{next_path}")


def test_end_user_device_page(phone: Page, live_server: LiveServer, catalog: Catalog) -> None:
    phone.goto(f"{live_server.url}/d/{catalog.in_warranty.token}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("C3H 室外摄像头")
    expect(phone.locator(".warranty.ok")).to_contain_text("在保修期内")
    expect(phone.locator("img.photo")).to_be_visible()
    assert phone.evaluate("document.querySelector('img.photo').naturalWidth") == 640
    expect(phone.locator("#installer")).to_have_count(0)
    expect(phone.get_by_role("link", name="用户手册")).to_be_visible()
    assert fits_the_phone(phone)
    screenshot(phone, "device-end-user")
    # FAQ answers are folded until tapped.
    answer = phone.get_by_text("请擦拭镜头并关闭红外附近的强光源。")
    expect(answer).to_be_hidden()
    phone.get_by_text("C3H 夜视不清楚怎么办？").tap()
    expect(answer).to_be_visible()
    # The jump links lead to the help section.
    phone.locator(".jump").get_by_role("link", name="联系客服").tap()
    expect(phone.locator("#help")).to_be_in_viewport()
    # English on request.
    phone.get_by_role("link", name="English").tap()
    expect(phone.get_by_role("heading", level=1)).to_have_text("C3H outdoor camera")
    assert fits_the_phone(phone)
    screenshot(phone, "device-end-user-en")


def test_installer_device_page_after_login(
    phone: Page, live_server: LiveServer, catalog: Catalog, installer: int
) -> None:
    path = f"/d/{catalog.ship_only.token}"
    log_in(phone, live_server, path)
    section = phone.locator("#installer")
    expect(section).to_be_visible()
    expect(section).to_contain_text("出厂日期加宽限期")
    expect(section.get_by_role("link", name="安装指南（施工版）")).to_be_visible()
    phone.get_by_role("button", name="登记安装").tap()
    expect(phone.locator(".flash.ok")).to_contain_text("已登记安装")
    expect(section).to_contain_text("安装登记日期")
    assert fits_the_phone(phone)
    phone.evaluate("window.scrollTo(0, 0)")
    screenshot(phone, "device-installer")


def test_batch_lookup_on_a_phone(
    phone: Page, live_server: LiveServer, catalog: Catalog, installer: int
) -> None:
    log_in(phone, live_server, "/installer/batch")
    box = phone.get_by_label("粘贴序列号（每行一个，最多 100 个）")
    box.fill("AS2024C3H000001\nAS2019C3H000002\nAS2099X000009")
    expect(phone.locator("#serial-count")).to_have_text("已输入 3 个")
    # Note what the button shows once the form is sent; the page is replaced by the answer
    # soon after, so the note goes to sessionStorage, which outlives the page in this tab.
    phone.evaluate(
        """document.addEventListener("submit", () => setTimeout(() => {
             const b = document.querySelector("#batch-form button[type=submit]");
             sessionStorage.setItem("busy", JSON.stringify([b.textContent, b.disabled]));
           }, 20))"""
    )
    # Hold the request in the browser meanwhile, so the note is taken while the wait lasts.
    held: list[Route] = []
    phone.route("**/installer/batch", lambda route: held.append(route))
    phone.get_by_role("button", name="查询", exact=True).tap(no_wait_after=True)
    phone.wait_for_timeout(300)
    assert len(held) == 1
    held[0].continue_()
    phone.unroute("**/installer/batch")
    rows = phone.locator("table.results tbody tr")
    expect(rows).to_have_count(3)
    assert phone.evaluate("JSON.parse(sessionStorage.getItem('busy'))") == ["查询中…", True]
    expect(rows.nth(0)).to_contain_text("保内")
    expect(rows.nth(1)).to_contain_text("过保")
    expect(rows.nth(2)).to_contain_text("未找到")
    # On a phone each device is a card: the labels are shown beside the values.
    assert (
        phone.evaluate("getComputedStyle(document.querySelector('table.results thead')).display")
        == "none"
    )
    assert fits_the_phone(phone)
    screenshot(phone, "batch-lookup")
    with phone.expect_download() as download_info:
        phone.get_by_role("button", name="下载 CSV").tap()
    download = download_info.value
    path = download.path()
    assert path is not None
    text = path.read_bytes().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert [line[0] for line in lines[1:]] == [
        "AS2024C3H000001",
        "AS2019C3H000002",
        "AS2099X000009",
    ]
