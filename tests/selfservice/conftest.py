"""Fixtures for the self-service pages: a small catalogue, devices in every warranty state,
installer accounts, and helpers that act like a visitor (CSRF token from the page, login)."""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageDraw

from kefu.catalog.gs1 import check_digit
from kefu.catalog.models import (
    Device,
    Firmware,
    Installer,
    KbEntryProduct,
    Manual,
    ProductModel,
    Series,
    Video,
)
from kefu.extensions import db
from kefu.models import KbEntry

INSTALLER_PHONE = "13800000001"
INSTALLER_PASSWORD = "install-pass-1"
GTIN_BODY = "0690123456789"
GTIN = GTIN_BODY + str(check_digit(GTIN_BODY))


def product_photo() -> bytes:
    """A 640x480 JPEG like a product shot on a white background (what a maker would upload)."""
    image = Image.new("RGB", (640, 480), (247, 248, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((220, 120, 420, 320), fill=(40, 44, 52))
    draw.ellipse((280, 180, 360, 260), fill=(20, 90, 160))
    draw.rectangle((300, 320, 340, 400), fill=(200, 200, 205))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()


@pytest.fixture
def app(app: Flask, tmp_path: Path) -> Flask:
    """The shared test app with MEDIA_ROOT in a temporary folder holding the catalogue's files."""
    media = tmp_path / "media"
    (media / "models").mkdir(parents=True)
    (media / "manuals").mkdir()
    (media / "models" / "as-c3h.jpg").write_bytes(product_photo())
    (media / "manuals" / "as-c3h-user.pdf").write_bytes(b"%PDF-1.4 user manual")
    (media / "manuals" / "as-c3h-install.pdf").write_bytes(b"%PDF-1.4 install guide")
    (tmp_path / "secret.txt").write_text("outside media")
    app.config["MEDIA_ROOT"] = str(media)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client with an address of its own, so rate-limit counters in the shared Redis
    belong to this test alone (another run may share the KEFU_TEST_REDIS database)."""
    client = app.test_client()
    octets = ".".join(str(secrets.randbelow(256)) for _ in range(3))
    client.environ_base["REMOTE_ADDR"] = f"127.{octets}"
    return client


@dataclass
class Catalog:
    """What the catalogue fixture created, by role in the tests."""

    in_warranty: Device
    out_of_warranty: Device
    ship_only: Device
    no_dates: Device
    bare: Device  # a model with no documents, videos, FAQ or firmware


def _kb(entry_id: str, question: str, answer: str, audience: str, *products: str) -> None:
    db.session.add(
        KbEntry(
            id=entry_id, question=question, alternates=[], answer=answer, audience=audience, tags=[]
        )
    )
    db.session.flush()
    for product in products:
        db.session.add(KbEntryProduct(kb_entry_id=entry_id, product=product))


@pytest.fixture
def catalog(app: Flask) -> Catalog:
    """One camera model with everything, one bare model, and devices in each warranty state."""
    today = datetime.now(UTC).date()
    with app.app_context():
        cameras = Series(
            code="C-Series",
            name="C 系列摄像头",
            name_en="C-Series cameras",
            category="camera",
            warranty_months=24,
        )
        locks = Series(
            code="L-Series",
            name="L 系列智能锁",
            name_en="L-Series locks",
            category="lock",
            warranty_months=12,
        )
        c3h = ProductModel(
            code="AS-C3H",
            name="C3H 室外摄像头",
            name_en="C3H outdoor camera",
            series=cameras,
            summary="300 万像素，全彩夜视，IP66 防水",
            photo="models/as-c3h.jpg",
        )
        c3h.manuals = [
            Manual(
                title="用户手册",
                title_en="User manual",
                file="manuals/as-c3h-user.pdf",
                size_bytes=2_400_000,
                audience="all",
                sort=1,
            ),
            Manual(
                title="安装指南（施工版）",
                title_en="Installation guide",
                file="manuals/as-c3h-install.pdf",
                size_bytes=3_100_000,
                audience="installer",
                sort=2,
            ),
        ]
        c3h.videos = [
            Video(
                title="三分钟上手",
                title_en="Getting started",
                url="https://cdn.example.com/c3h.mp4",
                duration_s=185,
                audience="all",
                sort=1,
            ),
            Video(
                title="立杆安装与走线",
                title_en="Pole mounting",
                url="https://cdn.example.com/pole.mp4",
                duration_s=420,
                audience="installer",
                sort=2,
            ),
        ]
        c3h.firmware = [
            Firmware(
                version="V5.7.3",
                released_on=date(2025, 3, 1),
                notes="修复夜视偶发闪烁",
                sha256="a" * 64,
                url="https://cdn.example.com/fw/c3h-5.7.3.bin",
            ),
            Firmware(
                version="V5.6.0",
                released_on=date(2024, 9, 1),
                notes="新增人形检测",
                sha256="b" * 64,
                url="https://cdn.example.com/fw/c3h-5.6.0.bin",
            ),
        ]
        l1 = ProductModel(
            code="AS-L1",
            name="L1 智能门锁",
            name_en="L1 smart lock",
            series=locks,
            summary="指纹、密码、NFC 开锁",
        )
        db.session.add_all([cameras, locks, c3h, l1])
        db.session.flush()
        _kb(
            "c3h_night",
            "C3H 夜视不清楚怎么办？",
            "请擦拭镜头并关闭红外附近的强光源。",
            "all",
            "AS-C3H",
        )
        _kb(
            "camera_offline",
            "摄像头离线怎么办？",
            "请检查电源和 Wi-Fi，重启设备后等待两分钟。",
            "all",
            "camera",
        )
        _kb(
            "c3h_pole",
            "C3H 立杆安装需要什么支架？",
            "使用 AS-PB2 抱箍支架，线缆从支架内部穿过。",
            "installer",
            "AS-C3H",
        )
        _kb("lock_battery", "门锁电池能用多久？", "正常使用约 12 个月。", "all", "AS-L1")
        devices = {
            "in_warranty": Device(
                serial="AS2024C3H000001",
                model=c3h,
                gtin=GTIN,
                ship_date=today - timedelta(days=200),
                purchase_date=today - timedelta(days=100),
                dealer="杭州安居电子",
            ),
            "out_of_warranty": Device(
                serial="AS2019C3H000002",
                model=c3h,
                ship_date=date(2019, 1, 10),
                purchase_date=date(2019, 3, 1),
                dealer="宁波视安商贸",
            ),
            "ship_only": Device(
                serial="AS2025C3H000003", model=c3h, ship_date=today - timedelta(days=30)
            ),
            "no_dates": Device(serial="AS2025C3H000004", model=c3h),
            "bare": Device(serial="AS2025L1000005", model=l1, purchase_date=today),
        }
        db.session.add_all(devices.values())
        db.session.commit()
        for device in devices.values():
            # Load what the tests read so they can use the objects after the context closes.
            _ = (device.token, device.serial, device.id)
        return Catalog(**devices)


def make_installer(
    app: Flask, phone: str = INSTALLER_PHONE, status: str = "approved", openid: str | None = None
) -> int:
    """Create an installer account directly (registration has its own tests); return its id."""
    with app.app_context():
        installer = Installer(
            phone=phone,
            name="王师傅",
            company="安装无忧工程部",
            status=status,
            wechat_openid=openid,
            approved_at=datetime.now(UTC) if status == "approved" else None,
        )
        installer.set_password(INSTALLER_PASSWORD)
        db.session.add(installer)
        db.session.commit()
        return installer.id


@pytest.fixture
def installer(app: Flask) -> int:
    """An approved installer account (phone INSTALLER_PHONE, password INSTALLER_PASSWORD)."""
    return make_installer(app)


_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client: FlaskClient, url: str, **kwargs: object) -> str:
    """The CSRF token of the form on ``url``, as a browser would submit it."""
    page = client.get(url, **kwargs).get_data(as_text=True)  # type: ignore[arg-type]
    match = _CSRF_RE.search(page)
    assert match, f"no form with a CSRF token on {url}"
    return match.group(1)


def log_in(
    client: FlaskClient, phone: str = INSTALLER_PHONE, password: str = INSTALLER_PASSWORD
) -> None:
    """Log in through the login form, as an installer would."""
    token = csrf_from(client, "/installer/login")
    response = client.post(
        "/installer/login", data={"phone": phone, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
