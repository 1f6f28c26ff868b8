"""The device page behind each QR code: what an end user sees, and what an installer sees."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from kefu import timeutil
from kefu.catalog import devices
from kefu.catalog.models import Device
from kefu.extensions import db

from .conftest import Catalog, csrf_from, log_in, make_installer


def page(client: FlaskClient, url: str, **kwargs: object) -> str:
    response = client.get(url, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_end_user_sees_model_warranty_documents_faq_firmware_and_help(
    client: FlaskClient, catalog: Catalog
) -> None:
    html = page(client, f"/d/{catalog.in_warranty.token}")
    assert "C3H 室外摄像头" in html and "AS-C3H" in html
    assert 'src="/media/models/as-c3h.jpg"' in html
    assert "在保修期内" in html and "保修至" in html
    assert 'href="/media/manuals/as-c3h-user.pdf"' in html and "用户手册" in html
    assert "<video" in html and "https://cdn.example.com/c3h.mp4" in html
    assert "C3H 夜视不清楚怎么办？" in html  # FAQ tied to the model
    assert "摄像头离线怎么办？" in html  # FAQ tied to the model's category
    assert "门锁电池能用多久？" not in html  # another model's FAQ
    assert "<details>" in html  # collapsible
    assert "V5.7.3" in html and "a" * 64 in html and "V5.6.0" in html
    assert 'id="help"' in html and "人工" in html
    # Installer-only content stays out of the end user's page.
    for hidden in (
        "安装指南（施工版）",
        "立杆安装",
        "C3H 立杆安装需要什么支架？",
        "杭州安居电子",
        "计算依据",
        "登记安装",
        'id="installer"',
    ):
        assert hidden not in html, hidden


def test_installer_sees_more_at_the_same_url(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    log_in(client)
    html = page(client, url)
    assert 'id="installer"' in html
    assert "购买凭证日期" in html  # the basis
    purchase = (datetime.now(UTC).date() - timedelta(days=100)).isoformat()
    assert purchase in html  # the start date
    assert "杭州安居电子" in html  # the dealer
    # Installer-only files are linked under an unguessable name, never their own path.
    assert "/media/manuals/as-c3h-install.pdf" not in html and "安装指南（施工版）" in html
    assert re.search(r'href="/media/i/[0-9a-f]{32}/as-c3h-install\.pdf"', html)
    assert "C3H 立杆安装需要什么支架？" in html and "https://cdn.example.com/pole.mp4" in html
    assert f'action="/d/{catalog.in_warranty.token}/install"' in html
    assert 'href="/installer/batch"' in html
    # Everything the end user sees is still there.
    assert "用户手册" in html and "C3H 夜视不清楚怎么办？" in html


def test_no_url_parameter_makes_a_visitor_an_installer(
    client: FlaskClient, catalog: Catalog
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    for query in ("?installer=1", "?role=installer", "?audience=installer", "?debug=1"):
        html = page(client, url + query)
        assert 'id="installer"' not in html and "杭州安居电子" not in html, query


def test_pending_or_withdrawn_account_sees_the_end_user_page(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    log_in(client)
    assert 'id="installer"' in page(client, url)
    with app.app_context():
        from kefu import accounts

        account = accounts.by_phone("13800000001")
        assert account is not None
        accounts.reject(account)
        db.session.commit()
    html = page(client, url)
    assert 'id="installer"' not in html and "杭州安居电子" not in html


def test_unknown_and_revoked_tokens_get_the_same_404(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    old = catalog.in_warranty.token
    with app.app_context():
        device = db.session.get(Device, catalog.in_warranty.id)
        assert device is not None
        new = devices.revoke(device)
        db.session.commit()
    revoked = client.get(f"/d/{old}")
    unknown = client.get("/d/" + "A" * len(old))
    assert revoked.status_code == unknown.status_code == 404
    assert revoked.get_data() == unknown.get_data()
    assert "找不到这个页面" in revoked.get_data(as_text=True)
    assert client.get(f"/d/{new}").status_code == 200


def test_personalised_pages_are_private_and_vary_on_cookie(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    for logged_in in (False, True):
        if logged_in:
            log_in(client)
        response = client.get(url)
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "Cookie" in response.headers["Vary"]
    for other in ("/warranty", "/installer/batch", "/installer/login"):
        response = client.get(other)
        assert "no-store" in response.headers["Cache-Control"], other


def test_warranty_lines_for_each_state(client: FlaskClient, catalog: Catalog) -> None:
    out = page(client, f"/d/{catalog.out_of_warranty.token}")
    assert "已过保修期" in out and "2021-02-28 到期" in out  # 24 months from 2019-03-01
    ship = page(client, f"/d/{catalog.ship_only.token}")
    assert "在保修期内" in ship
    unknown = page(client, f"/d/{catalog.no_dates.token}")
    assert "暂无保修起算日期" in unknown and "保修至" not in unknown


def test_empty_states_on_a_model_without_content(client: FlaskClient, catalog: Catalog) -> None:
    html = page(client, f"/d/{catalog.bare.token}")
    assert "L1 智能门锁" in html
    assert "该型号暂无电子说明书" in html
    assert "门锁电池能用多久？" in html  # its FAQ still shows
    assert "该型号暂无可下载的固件" in html
    assert "<video" not in html and '<img class="photo"' not in html


def test_installer_registers_an_installation(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    url = f"/d/{catalog.ship_only.token}"
    log_in(client)
    day = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    token = csrf_from(client, url)
    response = client.post(f"{url}/install", data={"installed_on": day, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("#install")
    html = page(client, url)
    assert f"已登记安装：{day}" in html
    assert "安装登记日期" in html  # the warranty now starts from the installation
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None and device.installed_on is not None
        assert device.installed_on.isoformat() == day and device.installer_id == installer


def test_installation_in_the_future_is_refused_in_the_users_language(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    url = f"/d/{catalog.ship_only.token}"
    log_in(client)
    with app.app_context():  # tomorrow on the maker's calendar, as the check reads it
        tomorrow = (timeutil.today() + timedelta(days=1)).isoformat()
    token = csrf_from(client, url + "?lang=en")
    client.post(f"{url}/install", data={"installed_on": tomorrow, "csrf_token": token})
    assert "the installation date is in the future" in page(client, url)
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None and device.installed_on is None


def test_installation_registration_needs_an_installer_and_a_csrf_token(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    url = f"/d/{catalog.ship_only.token}"
    day = datetime.now(UTC).date().isoformat()
    token = csrf_from(client, "/warranty")
    anonymous = client.post(f"{url}/install", data={"installed_on": day, "csrf_token": token})
    assert anonymous.status_code == 302 and "/installer/login" in anonymous.headers["Location"]
    make_installer(app)
    log_in(client)
    forged = client.post(f"{url}/install", data={"installed_on": day})
    assert forged.status_code == 400 and "页面已过期" in forged.get_data(as_text=True)
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None and device.installed_on is None


def test_media_is_served_from_media_root_only(client: FlaskClient, catalog: Catalog) -> None:
    with client.get("/media/models/as-c3h.jpg") as photo:
        assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    for escape in ("/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/..%2fsecret.txt"):
        response = client.get(escape)
        assert response.status_code == 404, escape
        assert b"outside media" not in response.get_data()


_ASSET_RE = re.compile(r'<(?:link[^>]+href|script[^>]+src|img[^>]+src|video[^>]+poster)="([^"]+)"')


def test_device_page_weighs_under_100_kb(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    """HTML + every stylesheet, script and image it loads; videos and PDFs are not counted."""
    for logged_in in (False, True):
        if logged_in:
            log_in(client)
        html = client.get(f"/d/{catalog.in_warranty.token}").get_data()
        assets = _ASSET_RE.findall(html.decode())
        assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
        total = len(html)
        for asset in assets:
            if asset.startswith("/"):
                with client.get(asset) as response:
                    assert response.status_code == 200, asset
                    total += len(response.get_data())
        assert total < 100 * 1024, f"{total} bytes"
