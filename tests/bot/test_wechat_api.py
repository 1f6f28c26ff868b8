"""The WeChat API client: shared access token across workers, timeouts, the menu command."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from kefu import integrations
from kefu.wechat import (
    ERRORS,
    ApiUnauthorized,
    QuotaExceeded,
    ReplyWindowClosed,
    TokenRejected,
    TooManyMessages,
    WeChatApiError,
)
from tests.conftest import REDIS_TEST_URL
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api


@pytest.fixture
def fake_api() -> Iterator[FakeWeChatApi]:
    with serve_fake_wechat_api() as api:
        yield api


@pytest.mark.parametrize("redis_url", [REDIS_TEST_URL, ""])
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


# --- stable_token, one refresh at a time, bounded retries, errors told apart ------------------


def test_token_comes_from_stable_token(
    make_app: Callable[..., Flask], fake_api: FakeWeChatApi
) -> None:
    app = make_app(WECHAT_API_BASE_URL=fake_api.url)
    with app.app_context():
        integrations.api_client().send_text("o_user", "您好")
    [(_, fetch)] = [c for c in fake_api.calls if c[0] == "/cgi-bin/stable_token"]
    assert fetch["body"] == {
        "grant_type": "client_credential",
        "appid": "wx0123456789abcdef",
        "secret": "test-app-secret",
        "force_refresh": False,
    }
    assert fake_api.legacy_token_fetches == 0
    [(_, sent)] = [c for c in fake_api.calls if c[0] == "/cgi-bin/message/custom/send"]
    assert sent["body"]["text"]["content"] == "您好"  # UTF-8 JSON, not \\u escapes


@pytest.mark.parametrize("redis_url", [REDIS_TEST_URL, ""], ids=["redis", "database"])
def test_a_token_rejected_once_is_refreshed_and_the_call_retried(
    make_app: Callable[..., Flask], fake_api: FakeWeChatApi, redis_url: str
) -> None:
    app = make_app(WECHAT_API_BASE_URL=fake_api.url, REDIS_URL=redis_url)
    with app.app_context():
        integrations.api_client().send_text("o_user", "第一条")
        fake_api.revoked.add("TOKEN1")  # invalidated elsewhere (40001)
        integrations.api_client().send_text("o_user", "第二条")
    sent = [c[1]["args"]["access_token"] for c in fake_api.calls if "custom/send" in c[0]]
    assert sent == ["TOKEN1", "TOKEN1", "TOKEN2"]
    assert fake_api.token_fetches == 2


@pytest.mark.parametrize("code", [40001, 42001, 40014])
def test_a_persistent_token_error_is_retried_once_then_reported(
    make_app: Callable[..., Flask], fake_api: FakeWeChatApi, tmp_path: Path, code: int
) -> None:
    app = make_app(WECHAT_API_BASE_URL=fake_api.url)
    fake_api.always_errors["/cgi-bin/menu/create"] = code
    path = tmp_path / "menu.json"
    path.write_text(json.dumps({"button": [{"type": "click", "name": "a", "key": "K"}]}), "utf-8")
    started = time.monotonic()
    result = app.test_cli_runner().invoke(args=["wechat", "menu", str(path)])
    assert result.exit_code != 0 and str(code) in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, RecursionError)
    assert fake_api.token_fetches == 2  # the first token and one refresh, never a loop
    assert len([c for c in fake_api.calls if c[0] == "/cgi-bin/menu/create"]) == 2
    assert time.monotonic() - started < 5
    with app.app_context(), pytest.raises(TokenRejected) as raised:
        integrations.api_client().create_menu({"button": []})
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("code", "error", "retryable"),
    [
        (45015, ReplyWindowClosed, False),
        (45047, TooManyMessages, True),
        (45009, QuotaExceeded, True),
        (48001, ApiUnauthorized, False),
        (-1, WeChatApiError, True),
    ],
)
def test_send_errors_are_told_apart(
    make_app: Callable[..., Flask],
    fake_api: FakeWeChatApi,
    code: int,
    error: type[WeChatApiError],
    retryable: bool,
) -> None:
    app = make_app(WECHAT_API_BASE_URL=fake_api.url)
    fake_api.errors["/cgi-bin/message/custom/send"] = [code]
    with app.app_context(), pytest.raises(WeChatApiError) as raised:
        integrations.api_client().send_text("o_user", "您的工单已受理")
    assert type(raised.value) is error
    assert raised.value.code == code and raised.value.retryable is retryable
    # Not a token problem: sent once, no refresh.
    assert len([c for c in fake_api.calls if "custom/send" in c[0]]) == 1
    assert fake_api.token_fetches == 1
    assert ERRORS.get(code, WeChatApiError) is error


def test_network_errors_carry_no_code(make_app: Callable[..., Flask]) -> None:
    app = make_app(WECHAT_API_BASE_URL="http://127.0.0.1:9", WECHAT_HTTP_TIMEOUT=0.5)
    with app.app_context(), pytest.raises(WeChatApiError) as raised:
        integrations.api_client().send_text("o_user", "hi")
    assert raised.value.code is None and raised.value.retryable


@pytest.mark.parametrize("redis_url", [REDIS_TEST_URL, ""], ids=["redis", "database"])
def test_one_process_at_a_time_refreshes_the_token(
    make_app: Callable[..., Flask], fake_api: FakeWeChatApi, redis_url: str
) -> None:
    fake_api.token_delay = 0.3  # a slow fetch: the others must wait for it, not fetch too
    workers = [make_app(WECHAT_API_BASE_URL=fake_api.url, REDIS_URL=redis_url) for _ in range(4)]
    barrier = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def send(worker: Flask) -> None:
        with worker.app_context():
            barrier.wait(timeout=10)
            try:
                integrations.api_client().send_text("o_user", "hi")
            except BaseException as exc:  # reported below, with the others'
                failures.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert fake_api.token_fetches == 1
    sent = [c[1]["args"]["access_token"] for c in fake_api.calls if "custom/send" in c[0]]
    assert sent == ["TOKEN1"] * len(workers)
