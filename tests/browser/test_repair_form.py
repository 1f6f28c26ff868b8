"""The repair request on a phone in Chromium: from the device page, with a camera photo."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect

from tests.selfservice.conftest import Catalog

from .conftest import LiveServer, fits_the_phone, screenshot


def receipt(tmp_path: Path) -> Path:
    """A photo as a phone camera would hand it to the page: a large JPEG."""
    path = tmp_path / "IMG_2031.jpg"
    image = Image.new("RGB", (3024, 4032), (240, 238, 230))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    path.write_bytes(out.getvalue())
    return path


def test_request_from_the_device_page_on_a_phone(
    phone: Page, live_server: LiveServer, catalog: Catalog, tmp_path: Path
) -> None:
    live_server.server.app.config["PROOF_ROOT"] = str(tmp_path / "proofs")
    phone.goto(f"{live_server.url}/d/{catalog.ship_only.token}")
    form = phone.locator("#repair-form")
    expect(form.get_by_label("设备序列号")).to_have_value(catalog.ship_only.serial)
    form.get_by_role("radio", name="申请保修").check()
    form.get_by_label("故障描述").fill("晚上画面发黑，红外灯不亮")
    form.get_by_label("联系人").fill("李红")
    form.get_by_label("手机号").fill("１３９ １７３８ ４５２６")
    form.get_by_label("寄回地址").fill("杭州")
    assert fits_the_phone(phone)
    form.get_by_role("button", name="提交").tap()
    # The same engine as the chat: what is wrong is said in place, nothing typed is lost.
    expect(phone.locator(".field-error")).to_have_count(2)
    expect(phone.get_by_text("地址不完整")).to_be_visible()
    expect(phone.get_by_text("需要购买凭证")).to_be_visible()
    form = phone.locator("#repair-form")
    expect(form.get_by_label("故障描述")).to_have_value("晚上画面发黑，红外灯不亮")
    screenshot(phone, "repair-form-errors")
    form.get_by_label("寄回地址").fill("浙江省杭州市西湖区文三路100号3幢501室")
    form.get_by_label("购买凭证照片（申请保修或换货时需要）").set_input_files(
        str(receipt(tmp_path))
    )
    form.get_by_role("button", name="提交").tap()
    expect(phone.get_by_role("heading", level=1)).to_have_text("工单进度")
    expect(phone.locator(".ticket-number")).to_contain_text("KF-")
    expect(phone.locator("progress.bar")).to_be_visible()
    expect(phone.locator(".steps li.current")).to_have_text("已审核")
    expect(phone.get_by_text("139****4526")).to_be_visible()
    assert fits_the_phone(phone)
    screenshot(phone, "ticket-status")
