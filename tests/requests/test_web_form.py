"""The request on the web: the device page's slot, its own page, the same engine, proof photos."""

from __future__ import annotations

import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from kefu.extensions import db
from kefu.requests import photos
from kefu.tickets.models import Ticket
from tests.selfservice.conftest import csrf_from

from .conftest import Catalog

FORM = {
    "request_type": "repair",
    "fault": "晚上画面发黑，红外灯不亮",
    "contact_name": "李红",
    "phone": "139 1738 4526",
    "address": "上海市浦东新区张江路88号2号楼1201室",
}


def jpeg_with_gps(size: tuple[int, int] = (1200, 900)) -> bytes:
    image = Image.new("RGB", size, (250, 250, 245))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (30.0, 15.0, 0.0), 3: "E", 4: (120.0, 10.0, 0.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def post(client: FlaskClient, url: str, data: dict[str, object]) -> object:
    token = csrf_from(client, url)
    return client.post(
        "/repair", data={**data, "csrf_token": token}, content_type="multipart/form-data"
    )


def test_device_page_slot_prefills_and_files_a_ticket(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    page = client.get(url).get_data(as_text=True)
    assert 'id="repair-form"' in page and f'value="{catalog.in_warranty.serial}"' in page
    response = post(client, url, {**FORM, "serial": catalog.in_warranty.serial})
    assert response.status_code == 302 and "/t/" in response.headers["Location"]
    status = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "KF-" in status and "已审核" in status and "139****4526" in status
    with app.app_context():
        ticket = db.session.scalars(select(Ticket)).one()
        assert ticket.channel == "web" and ticket.phone == "13917384526"
        assert ticket.fields["model"]["source"] == "registry"


def test_errors_are_shown_in_place_and_nothing_is_lost(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    bad = {**FORM, "serial": "x", "phone": "12345", "address": "杭州"}
    response = post(client, "/repair", bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "序列号格式不对" in html and "11 位" in html and "地址不完整" in html
    assert "晚上画面发黑，红外灯不亮" in html and 'value="李红"' in html
    english = post(client, "/repair?lang=en", bad).get_data(as_text=True)
    assert "not a mobile number" in english
    with app.app_context():
        assert db.session.scalar(select(Ticket.id)) is None


def test_proof_photo_is_cleaned_and_kept_outside_the_web_root(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    data = {**FORM, "serial": catalog.ship_only.serial, "request_type": "warranty"}
    refused = post(client, "/repair", data)
    assert refused.status_code == 422 and "购买凭证" in refused.get_data(as_text=True)
    data["proof"] = (io.BytesIO(jpeg_with_gps()), "receipt.jpg")
    response = post(client, "/repair", data)
    assert response.status_code == 302
    with app.app_context():
        ticket = db.session.scalars(select(Ticket)).one()
        path = photos.path_for(ticket.proof_sha256)
        assert path.exists() and str(path).startswith(app.config["PROOF_ROOT"])
        with Image.open(path) as stored:
            assert not stored.getexif()  # no GPS, no camera
        assert ticket.proof_sha256 not in client.get(f"/t/{ticket.status_token}").get_data(
            as_text=True
        )
    assert (
        client.get(f"/media/{ticket.proof_sha256[:2]}/{ticket.proof_sha256}.jpg").status_code == 404
    )


@pytest.mark.parametrize("kind", ["text", "bomb", "huge"])
def test_bad_photos_are_refused_with_a_reason(
    app: Flask, client: FlaskClient, catalog: Catalog, kind: str
) -> None:
    if kind == "text":
        upload, reason = b"not an image at all", "不是可以识别的图片"
    elif kind == "bomb":
        out = io.BytesIO()
        Image.new("1", (12000, 12000)).save(out, "PNG")  # a few KB, 144 million pixels
        upload, reason = out.getvalue(), "分辨率过高"
    else:
        app.config["PROOF_MAX_BYTES"] = 50_000
        upload, reason = jpeg_with_gps((2000, 2000)) + b"\0" * 60_000, "照片太大"
    data = {
        **FORM,
        "serial": catalog.ship_only.serial,
        "request_type": "warranty",
        "proof": (io.BytesIO(upload), "x.jpg"),
    }
    response = post(client, "/repair", data)
    assert response.status_code == 422
    assert reason in response.get_data(as_text=True)


def test_inside_wechat_the_ticket_is_tied_to_the_openid(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    with client.session_transaction() as session:
        session["wx_checked"] = True
        session["wx_openid"] = "o_web"
    response = post(client, "/repair", {**FORM, "serial": catalog.in_warranty.serial})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Ticket)).one().openid == "o_web"
    from .conftest import say

    assert re.search(r"KF-\d{8}-", say(app, "o_web", "查询工单"))


def test_a_duplicate_by_phone_alone_reveals_no_ticket(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    data = {**FORM, "serial": catalog.in_warranty.serial}
    assert post(client, "/repair", data).status_code == 302
    with app.app_context():
        number = db.session.scalars(select(Ticket)).one().number
    again = post(client, "/repair", data)
    html = again.get_data(as_text=True)
    assert again.status_code == 422 and "已有以该手机号提交的处理中工单" in html
    assert number not in html and "/t/" not in html
    with app.app_context():
        assert len(db.session.scalars(select(Ticket)).all()) == 1


def test_oauth_inside_wechat_ties_the_form_to_the_chat(
    app: Flask, client: FlaskClient, catalog: Catalog, fake_api: object
) -> None:
    from tests.selfservice.test_wechat_oauth import WECHAT_UA, visit_in_wechat

    fake_api.oauth_openids["CODE1"] = "o_oauth"  # type: ignore[attr-defined]
    url = f"/repair?d={catalog.in_warranty.token}"
    page, _ = visit_in_wechat(client, url, "CODE1")
    assert catalog.in_warranty.serial in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/repair",
        data={**FORM, "serial": catalog.in_warranty.serial, "csrf_token": token},
        headers={"User-Agent": WECHAT_UA},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Ticket)).one().openid == "o_oauth"
