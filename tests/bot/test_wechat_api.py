"""The WeChat API client: shared access token across workers, timeouts, the menu command."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from kefu import integrations
from kefu.wechat import WeChatApiError
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api


@pytest.fixture
def fake_api() -> Iterator[FakeWeChatApi]:
    with serve_fake_wechat_api() as api:
        yield api


@pytest.mark.parametrize("redis_url", ["redis://127.0.0.1:6379/15", ""])
def test_workers_share_one_access_token(
    make_app: Callable[..., Flask], fake_api: FakeWeChatApi, redis_url: str
) -> None:
    workers = [make_app(WECHAT_API_BASE_URL=fake_api.url, REDIS_URL=redis_url) for _ in range(3)]
    for worker in workers:
        with worker.app_context():
            integrations.api_client().send_text("o_user", "您的工单已受理")
    assert fake_api.token_fetches == 1
    sent = [c for c in fake_api.calls if c[0] == "/cgi-bin/message/custom/send"]
    assert len(sent) == 3 and all(c[1]["args"]["access_token"] == "TOKEN1" for c in sent)


def test_slow_wechat_api_times_out(make_app: Callable[..., Flask], fake_api: FakeWeChatApi) -> None:
    fake_api.delay = 1.5
    app = make_app(WECHAT_API_BASE_URL=fake_api.url, WECHAT_HTTP_TIMEOUT=0.3)
    started = time.monotonic()
    with app.app_context(), pytest.raises(WeChatApiError):
        integrations.api_client().send_text("o_user", "hi")
    assert time.monotonic() - started < 1.4


def test_menu_command_publishes_the_menu(
    make_app: Callable[..., Flask], fake_api: FakeWeChatApi, tmp_path: Path
) -> None:
    app = make_app(WECHAT_API_BASE_URL=fake_api.url)
    menu = {"button": [{"type": "click", "name": "转人工", "key": "MENU_HUMAN"}]}
    path = tmp_path / "menu.json"
    path.write_text(json.dumps(menu, ensure_ascii=False), "utf-8")
    result = app.test_cli_runner().invoke(args=["wechat", "menu", str(path)])
    assert result.exit_code == 0, result.output
    [(_, call)] = [c for c in fake_api.calls if c[0] == "/cgi-bin/menu/create"]
    assert call["body"] == menu
    bad = tmp_path / "bad.json"
    bad.write_text("{", "utf-8")
    failed = app.test_cli_runner().invoke(args=["wechat", "menu", str(bad)])
    assert failed.exit_code != 0 and "not valid JSON" in failed.output
