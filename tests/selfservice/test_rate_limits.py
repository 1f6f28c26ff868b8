"""Rate limits that hold: Redis down or hanging, forged X-Forwarded-For, the OAuth callback,
batch lookups."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.wechat_api import serve_fake_wechat_api

from .conftest import Catalog, csrf_from, log_in

WECHAT_UA = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0.47 NetType/WIFI"


def lookups(client: FlaskClient, count: int, **kwargs: object) -> list[int]:
    token = csrf_from(client, "/warranty")
    return [
        client.post(
            "/warranty", data={"serial": f"AS2030X{i:06d}", "csrf_token": token}, **kwargs
        ).status_code  # type: ignore[arg-type]
        for i in range(count)
    ]


def test_a_forged_x_forwarded_for_does_not_reset_the_limit(
    client: FlaskClient, catalog: Catalog
) -> None:
    # Without a trusted proxy (PROXY_FIX_X_FOR=0, the default) the header means nothing.
    assert lookups(client, 10) == [200] * 10
    for forged in ("1.2.3.4", "10.9.8.7, 1.1.1.1", "::1"):
        assert lookups(client, 1, headers={"X-Forwarded-For": forged, "X-Real-IP": forged}) == [
            429
        ], forged


def test_behind_one_proxy_only_the_address_it_saw_counts(
    make_app: Callable[..., Flask], catalog: Catalog
) -> None:
    app = make_app(PROXY_FIX_X_FOR=1)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.1"  # nginx on the same host

    # nginx appends the client's address to whatever the client sent ($proxy_add_x_forwarded_for).
    def via_nginx(forged: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"{forged}, 203.0.113.7"}

    token = csrf_from(client, "/warranty")
    statuses = [
        client.post(
            "/warranty",
            headers=via_nginx(f"198.51.100.{i}"),
            data={"serial": "AS2030X000001", "csrf_token": token},
        ).status_code
        for i in range(11)
    ]
    assert statuses == [200] * 10 + [429]
    # Another real client still has its own allowance.
    other = client.post(
        "/warranty",
        headers={"X-Forwarded-For": "203.0.113.8"},
        data={"serial": "AS2030X000001", "csrf_token": token},
    )
    assert other.status_code == 200


def test_limits_hold_with_redis_down(make_app: Callable[..., Flask], catalog: Catalog) -> None:
    app = make_app(REDIS_URL="redis://127.0.0.1:9/0")  # nothing listens on the discard port
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    started = time.monotonic()
    assert lookups(client, 11) == [200] * 10 + [429]
    assert time.monotonic() - started < 3
    assert client.get(f"/d/{catalog.in_warranty.token}").status_code == 200


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


def test_limits_hold_with_redis_hanging(
    make_app: Callable[..., Flask], catalog: Catalog, black_hole: str
) -> None:
    app = make_app(REDIS_URL=black_hole)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.11"
    started = time.monotonic()
    assert lookups(client, 11) == [200] * 10 + [429]
    # One short timeout, then memory: not 11 requests each waiting on Redis.
    assert time.monotonic() - started < 3


def test_oauth_callback_is_quick_with_wechat_hanging_and_limited_per_client(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    with serve_fake_wechat_api() as api:
        api.delay = 1.0
        app.config.update(WECHAT_API_BASE_URL=api.url, WECHAT_HTTP_TIMEOUT=0.3)
        url = f"/d/{catalog.in_warranty.token}"
        statuses = []
        for attempt in range(11):
            client.delete_cookie("session")
            first = client.get(url, headers={"User-Agent": WECHAT_UA})
            state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
            started = time.monotonic()
            back = client.get(
                "/auth/wechat",
                query_string={"code": f"C{attempt}", "state": state},
                headers={"User-Agent": WECHAT_UA},
            )
            statuses.append(back.status_code)
            assert time.monotonic() - started < 1.5
        assert statuses == [302] * 10 + [429]
        assert "查询太频繁" in back.get_data(as_text=True)
        time.sleep(api.delay + 0.5)  # the fake records a call once its delay is over
        # Only the allowed callbacks reached WeChat.
        codes = {c[1]["args"]["code"] for c in api.calls if c[0] == "/sns/oauth2/access_token"}
        assert "C10" not in codes and len(codes) >= 9


def test_batch_lookups_are_limited_per_account(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    app.config["BATCH_LOOKUP_LIMIT"] = "3/hour"
    log_in(client)
    token = csrf_from(client, "/installer/batch")
    pasted = {"serials": "AS2024C3H000001", "csrf_token": token}
    assert client.get("/installer/batch").status_code == 200  # reading the form is free
    statuses = [client.post("/installer/batch", data=pasted).status_code for _ in range(2)]
    download = client.post(
        "/installer/batch.csv",
        data={"csrf_token": token, "file": (io.BytesIO(b"serial\nAS2024C3H000001\n"), "s.csv")},
        content_type="multipart/form-data",
    )
    assert statuses == [200, 200] and download.status_code == 200
    # The same account from another address has no fresh allowance.
    again = client.post(
        "/installer/batch", data=pasted, environ_base={"REMOTE_ADDR": "198.51.100.99"}
    )
    assert again.status_code == 429 and "查询太频繁" in again.get_data(as_text=True)
