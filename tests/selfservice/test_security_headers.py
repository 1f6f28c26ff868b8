"""Security headers: a script-tight CSP on every page, no framing, no leaking device links."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from .conftest import GTIN, Catalog

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_every_page_has_csp_nosniff_and_no_framing(client: FlaskClient, catalog: Catalog) -> None:
    for url in (
        "/",
        "/warranty",
        "/installer/login",
        f"/d/{catalog.in_warranty.token}",
        "/d/unknown",
        "/static/css/site.css",
        "/media/models/as-c3h.jpg",
    ):
        response = client.get(url)
        response.close()  # static and media responses stream a file
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, url
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["X-Frame-Options"] == "DENY", url
        assert "Strict-Transport-Security" not in response.headers  # plain-HTTP config


def test_device_pages_never_send_their_url_as_a_referrer(
    client: FlaskClient, catalog: Catalog
) -> None:
    for url in (f"/d/{catalog.in_warranty.token}", f"/01/{GTIN}/21/AS2024C3H000001"):
        assert client.get(url).headers["Referrer-Policy"] == "no-referrer", url
    assert client.get("/warranty").headers["Referrer-Policy"] == "same-origin"


def test_templates_have_no_inline_script_or_style() -> None:
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.I)
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in inline.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_https_deployments_get_hsts_and_secure_cookies(
    make_app: Callable[..., Flask], catalog: Catalog, installer: int
) -> None:
    app = make_app(
        SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True, MEDIA_ROOT="/nonexistent"
    )
    client = app.test_client()
    response = client.get("/?lang=en", base_url="https://kefu.example.com")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in c for c in cookies), cookies
    from .conftest import INSTALLER_PASSWORD, INSTALLER_PHONE, csrf_from

    token = csrf_from(client, "/installer/login", base_url="https://kefu.example.com")
    login = client.post(
        "/installer/login",
        base_url="https://kefu.example.com",
        headers={"Referer": "https://kefu.example.com/installer/login"},
        data={"phone": INSTALLER_PHONE, "password": INSTALLER_PASSWORD, "csrf_token": token},
    )
    assert login.status_code == 302
    cookies = login.headers.getlist("Set-Cookie")
    names = {c.split("=", 1)[0] for c in cookies}
    assert {"session", "remember_token"} <= names, names
    assert all("Secure" in c and "HttpOnly" in c for c in cookies), cookies


def test_device_page_forms_work_over_https_without_a_referer(
    make_app: Callable[..., Flask], catalog: Catalog, installer: int
) -> None:
    from .conftest import INSTALLER_PASSWORD, INSTALLER_PHONE, csrf_from

    app = make_app(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    client = app.test_client()
    https = "https://kefu.example.com"
    token = csrf_from(client, "/installer/login", base_url=https)
    client.post(
        "/installer/login",
        base_url=https,
        data={"phone": INSTALLER_PHONE, "password": INSTALLER_PASSWORD, "csrf_token": token},
    )
    url = f"/d/{catalog.ship_only.token}"
    token = csrf_from(client, url, base_url=https)
    # no-referrer: the browser sends neither Referer nor a usable Origin with this form.
    response = client.post(
        url + "/install", base_url=https, data={"installed_on": "2020-01-01", "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def test_the_webhook_gets_nosniff_only(client: FlaskClient) -> None:
    response = client.get("/wechat?signature=x&timestamp=1&nonce=1&echostr=hi")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers
    assert "X-Frame-Options" not in response.headers


def test_the_demo_chat_is_never_cached(make_app: Callable[..., Flask]) -> None:
    app = make_app(DEMO_CHAT=True)
    response = app.test_client().get("/demo/chat")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
