"""Inside WeChat the page learns who the visitor is through silent OAuth (snsapi_base).

WeChat is played by a fake API server on loopback (tests/wechat_api.py); nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kefu import accounts
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api

from .conftest import INSTALLER_PHONE, Catalog, csrf_from, log_in, make_installer

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI "
    "Language/zh_CN"
)
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def fake_api(app: Flask) -> Iterator[FakeWeChatApi]:
    """The fake WeChat API, with the app pointed at it."""
    with serve_fake_wechat_api() as api:
        app.config["WECHAT_API_BASE_URL"] = api.url
        yield api


def visit_in_wechat(client: FlaskClient, url: str, code: str) -> tuple[str, FlaskClient]:
    """Open ``url`` in WeChat and follow the OAuth round trip with ``code``; return the page."""
    first = client.get(url, headers={"User-Agent": WECHAT_UA})
    assert first.status_code == 302
    authorize = urlsplit(first.headers["Location"])
    assert authorize.netloc == "open.weixin.qq.com"
    query = parse_qs(authorize.query)
    assert query["scope"] == ["snsapi_base"] and query["appid"] == ["wx0123456789abcdef"]
    assert query["redirect_uri"] == ["https://kefu.example.com/auth/wechat"]
    # WeChat sends the visitor back to redirect_uri with a code and the state unchanged.
    back = client.get(
        "/auth/wechat",
        query_string={"code": code, "state": query["state"][0]},
        headers={"User-Agent": WECHAT_UA},
    )
    assert back.status_code == 302 and back.headers["Location"] == url
    page = client.get(url, headers={"User-Agent": WECHAT_UA})
    assert page.status_code == 200
    return page.get_data(as_text=True), client


def test_bound_installer_is_recognised_without_a_password(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    make_installer(app, openid="o_wang")
    fake_api.oauth_openids["CODE1"] = "o_wang"
    html, _ = visit_in_wechat(client, f"/d/{catalog.in_warranty.token}", "CODE1")
    assert 'id="installer"' in html and "杭州安居电子" in html
    exchange = [c for c in fake_api.calls if c[0] == "/sns/oauth2/access_token"]
    assert exchange and exchange[0][1]["args"]["code"] == "CODE1"
    assert exchange[0][1]["args"]["appid"] == "wx0123456789abcdef"


def test_first_password_login_in_wechat_binds_the_openid(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    make_installer(app)
    url = f"/d/{catalog.in_warranty.token}"
    fake_api.oauth_openids["CODE2"] = "o_new"
    html, _ = visit_in_wechat(client, url, "CODE2")
    assert 'id="installer"' not in html  # unknown openid: an end user for now
    log_in(client)
    with app.app_context():
        account = accounts.by_phone(INSTALLER_PHONE)
        assert account is not None and account.wechat_openid == "o_new"
    # A new WeChat session (another day, cookies gone) is recognised through OAuth alone.
    fake_api.oauth_openids["CODE3"] = "o_new"
    html, _ = visit_in_wechat(app.test_client(), url, "CODE3")
    assert 'id="installer"' in html


def test_logged_in_installer_coming_through_oauth_gets_bound(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    make_installer(app)
    url = f"/d/{catalog.in_warranty.token}"
    # WeChat's OAuth failed that day, so the installer logged in with the password, unbound.
    visit_in_wechat(client, url, "EXPIRED")
    log_in(client)
    with app.app_context():
        account = accounts.by_phone(INSTALLER_PHONE)
        assert account is not None and account.wechat_openid is None
    # Next browser session: the remember-me cookie logs them in, and OAuth runs once to bind.
    client.delete_cookie("session")
    fake_api.oauth_openids["CODE4"] = "o_bind"
    html, _ = visit_in_wechat(client, url, "CODE4")
    assert 'id="installer"' in html
    with app.app_context():
        account = accounts.by_phone(INSTALLER_PHONE)
        assert account is not None and account.wechat_openid == "o_bind"


def test_an_openid_bound_to_someone_else_is_not_taken_over(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    make_installer(app, phone="13800000009", openid="o_taken")
    make_installer(app)
    log_in(client)
    with client.session_transaction() as session:
        session["wx_state"] = "S"
    fake_api.oauth_openids["CODE5"] = "o_taken"
    client.get("/auth/wechat?code=CODE5&state=S")
    with app.app_context():
        account = accounts.by_phone(INSTALLER_PHONE)
        assert account is not None and account.wechat_openid is None


def test_oauth_happens_once_per_session_and_only_inside_wechat(
    client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    assert client.get(url, headers={"User-Agent": PHONE_UA}).status_code == 200
    fake_api.oauth_openids["CODE6"] = "o_visitor"
    visit_in_wechat(client, url, "CODE6")
    # Further pages in the same session do not bounce through WeChat again.
    assert (
        client.get(
            f"/d/{catalog.out_of_warranty.token}", headers={"User-Agent": WECHAT_UA}
        ).status_code
        == 200
    )


def test_no_oauth_without_an_official_account(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    app.config["WECHAT_APP_ID"] = ""
    response = client.get(f"/d/{catalog.in_warranty.token}", headers={"User-Agent": WECHAT_UA})
    assert response.status_code == 200


def test_a_forged_or_replayed_callback_is_refused(
    client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    fake_api.oauth_openids["CODE7"] = "o_wang"
    assert client.get("/auth/wechat?code=CODE7&state=guess").status_code == 400
    first = client.get(f"/d/{catalog.in_warranty.token}", headers={"User-Agent": WECHAT_UA})
    state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
    assert client.get(f"/auth/wechat?code=CODE7&state={state}").status_code == 302
    replay = client.get(f"/auth/wechat?code=CODE7&state={state}")
    assert replay.status_code == 400 and "请求有误" in replay.get_data(as_text=True)
    assert not [c for c in fake_api.calls if c[1]["args"].get("state")]


def test_wechat_refusing_the_code_leaves_an_anonymous_visitor(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    make_installer(app, openid="o_wang")
    html, _ = visit_in_wechat(client, f"/d/{catalog.in_warranty.token}", "EXPIRED")
    assert "C3H 室外摄像头" in html and 'id="installer"' not in html


def test_logout_in_wechat_does_not_log_straight_back_in(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    make_installer(app, openid="o_wang")
    fake_api.oauth_openids["CODE8"] = "o_wang"
    url = f"/d/{catalog.in_warranty.token}"
    html, _ = visit_in_wechat(client, url, "CODE8")
    assert 'id="installer"' in html
    token = csrf_from(client, url, headers={"User-Agent": WECHAT_UA})
    client.post("/installer/logout", data={"csrf_token": token}, headers={"User-Agent": WECHAT_UA})
    again = client.get(url, headers={"User-Agent": WECHAT_UA})
    assert again.status_code == 200 and 'id="installer"' not in again.get_data(as_text=True)
