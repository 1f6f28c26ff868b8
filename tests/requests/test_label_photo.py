"""A photo of the device label: fetched off the reply path, decoded, and the result told."""

from __future__ import annotations

import io

import numpy as np
import zxingcpp
from flask import Flask
from PIL import Image, ImageDraw

from kefu.catalog import qr
from kefu.extensions import db
from kefu.requests import labels
from kefu.tickets.models import RequestForm
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import Catalog, sent_texts


def label_photo(
    *,
    url: str | None = None,
    serial: str | None = None,
    datamatrix: bool = False,
    angle: float = 17,
) -> bytes:
    """A phone snapshot of a label: white sticker on a grey case, rotated, JPEG, 900x700."""
    sticker = Image.new("L", (520, 330), 255)
    draw = ImageDraw.Draw(sticker)
    draw.text((20, 12), "ANSHI AS-C3H  Made in China", fill=0)
    if url:
        code = Image.open(io.BytesIO(qr.png(url, box_size=5))).convert("L")
        sticker.paste(code.resize((230, 230)), (10, 40))
    if serial:
        fmt = zxingcpp.BarcodeFormat.DataMatrix if datamatrix else zxingcpp.BarcodeFormat.Code128
        bars = Image.fromarray(np.array(zxingcpp.create_barcode(serial, fmt).to_image(scale=2)))
        sticker.paste(bars, (250 if url else 20, 60))
        draw.text((250 if url else 20, 230), f"S/N {serial}", fill=0)
    photo = Image.new("RGB", (900, 700), (128, 132, 138))
    rotated = sticker.convert("RGB").rotate(angle, expand=True, fillcolor=(128, 132, 138))
    photo.paste(rotated, (120, 80))
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=80)
    return out.getvalue()


def test_decoding_finds_link_serial_and_datamatrix(app: Flask, catalog: Catalog) -> None:
    base = app.config["PUBLIC_BASE_URL"]
    with app.app_context():
        photo = label_photo(url=f"{base}/d/{catalog.in_warranty.token}")
        reading = labels.identify(labels.decode(photo), base)
        assert reading.how == "link" and reading.device.serial == catalog.in_warranty.serial
        photo = label_photo(serial=catalog.ship_only.serial, angle=-25)
        reading = labels.identify(labels.decode(photo), base)
        assert reading.how == "serial" and reading.device.serial == catalog.ship_only.serial
        photo = label_photo(serial=catalog.no_dates.serial, datamatrix=True)
        assert labels.identify(labels.decode(photo), base).device.serial == catalog.no_dates.serial
        # A link to some other site is not a device, whatever its path says.
        photo = label_photo(url=f"https://evil.example/d/{catalog.in_warranty.token}")
        assert labels.identify(labels.decode(photo), base).device is None


def test_label_photo_in_chat(
    app: Flask, wechat: FakeWeChat, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    u = "o_photo"
    fake_api.media["MEDIA1"] = label_photo(
        url=f"{app.config['PUBLIC_BASE_URL']}/d/{catalog.in_warranty.token}"
    )
    assert "序列号" in wechat.reply(wechat.text(u, "我要报修"))["Content"]
    reply = wechat.reply(wechat.send(u, "image", PicUrl="http://x/p.jpg", MediaId="MEDIA1"))
    assert "正在识别" in reply["Content"]
    told = sent_texts(fake_api, u)
    assert len(told) == 1 and "识别到：AS-C3H C3H 室外摄像头" in told[0]
    assert catalog.in_warranty.serial in told[0] and "是这台吗" in told[0]
    assert "故障" in wechat.reply(wechat.text(u, "是"))["Content"]
    with app.app_context():
        form = db.session.get(RequestForm, u)
        assert form.values["serial"] == catalog.in_warranty.serial
        assert form.sources["serial"] == "photo" and form.sources["dealer"] == "registry"


def test_a_photo_without_a_code_says_so(
    app: Flask, wechat: FakeWeChat, catalog: Catalog, fake_api: FakeWeChatApi
) -> None:
    u = "o_blurry"
    fake_api.media["BLANK"] = label_photo()
    wechat.text(u, "报修")
    wechat.send(u, "image", PicUrl="http://x/p.jpg", MediaId="BLANK")
    assert "没能从照片中识别" in sent_texts(fake_api, u)[0]
    assert "序列号" in wechat.reply(wechat.text(u, "继续"))["Content"]
