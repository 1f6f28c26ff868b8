"""Browser fixtures: the app served on loopback, and Debian's Chromium driven by Playwright
at a phone's viewport. Screenshots go to test-artifacts/screenshots/ (gitignored)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from werkzeug.serving import make_server

# The catalogue, installer and MEDIA_ROOT fixtures of the page tests, reused as they are.
from tests.selfservice.conftest import app, catalog, installer  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}


class LiveServer:
    """The app on 127.0.0.1 in a thread."""

    def __init__(self, flask_app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, flask_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:  # noqa: F811
    """The test app served over HTTP on loopback for the duration of a test."""
    server = LiveServer(app)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (CI installs the ``chromium`` package)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A fresh phone-sized page: 390x844, touch, Chinese locale, no cookies."""
    context: BrowserContext = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        accept_downloads=True,
    )
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fits_the_phone(page: Page) -> bool:
    """True when nothing makes the page scroll sideways on the phone's screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    return bool(width <= PHONE["width"])
