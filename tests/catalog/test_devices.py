"""Devices: CSV import and export, tokens, revocation, lookups, installation, FAQ."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from kefu import kb
from kefu.catalog import devices
from kefu.catalog.models import Device, Installer, ProductModel
from kefu.extensions import db

MakeDevice = Callable[..., Device]


def _count() -> int:
    return db.session.scalar(select(func.count(Device.id))) or 0


def test_import_upserts_and_keeps_links(
    runner: FlaskCliRunner, camera: ProductModel, tmp_path: Path
) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(
        "serial,model,gtin,ship_date,purchase_date,dealer\n"
        "c3h 2401 0001,as-c3h,4006381333931,2024-01-05,,杭州华东安防\n"
        "C3H24010002,AS-C3H,,2024/1/6,2024-02-01,\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 new" in result.output
    first = devices.by_serial("C3H24010001")
    assert first is not None
    assert (first.gtin, first.ship_date, first.dealer) == (
        "04006381333931",
        date(2024, 1, 5),
        "杭州华东安防",
    )
    token = first.token

    path.write_text("serial,model,purchase_date\nC3H24010001,AS-C3H,2024-03-01\n", encoding="utf-8")
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 updated" in result.output
    db.session.expire_all()
    again = devices.by_serial("C3H24010001")
    assert again is not None
    assert again.purchase_date == date(2024, 3, 1)
    assert again.dealer == "杭州华东安防"  # a column missing from the file is left alone
    assert again.token == token  # printed labels keep working


def test_import_with_errors_names_lines_and_imports_nothing(
    runner: FlaskCliRunner, camera: ProductModel, tmp_path: Path
) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(
        "serial,model,ship_date,gtin\n"
        "C3H24010001,AS-C3H,2024-01-05,\n"
        "C3H24010002,AS-X9,2024-01-05,\n"
        "C3H24010003,AS-C3H,2024-02-30,\n"
        "C3H24010001,AS-C3H,,\n"
        "C3H24010004,AS-C3H,,4006381333932\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 1
    assert "line 3" in result.output and "AS-X9" in result.output
    assert "line 4" in result.output and "ship_date" in result.output
    assert "line 5" in result.output and "duplicate serial of line 2" in result.output
    assert "line 6" in result.output and "GTIN" in result.output
    assert "line 2:" not in result.output
    assert "nothing imported" in result.output
    assert _count() == 0


def test_import_rejects_missing_and_unknown_columns(
    runner: FlaskCliRunner, camera: ProductModel, tmp_path: Path
) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("serial,purchse_date\nC3H24010001,2024-01-01\n", encoding="utf-8")
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 1
    assert "missing columns: model" in result.output
    assert "unknown columns: purchse_date" in result.output
    assert _count() == 0


def test_import_reads_gbk_from_excel(
    runner: FlaskCliRunner, camera: ProductModel, tmp_path: Path
) -> None:
    path = tmp_path / "devices.csv"
    path.write_bytes("serial,model,dealer\nC3H24010001,AS-C3H,深圳智联\n".encode("gbk"))
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 0, result.output
    device = devices.by_serial("C3H24010001")
    assert device is not None and device.dealer == "深圳智联"


def test_export_has_serial_model_and_url(
    runner: FlaskCliRunner, make_device: MakeDevice, tmp_path: Path
) -> None:
    make_device("C3H24010001", purchase_date=date(2024, 1, 2))
    second = make_device("C3H24010002")
    out = tmp_path / "out.csv"
    result = runner.invoke(args=["devices", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["serial"] for r in rows] == ["C3H24010001", "C3H24010002"]
    assert rows[1]["model"] == "AS-C3H"
    assert rows[1]["url"] == f"https://kefu.example.com/d/{second.token}"
    assert rows[0]["warranty_end"] == "2026-01-01"
    assert rows[0]["warranty_basis"] == "purchase"
    # The export imports back unchanged.
    result = runner.invoke(args=["devices", "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 unchanged" in result.output


def test_tokens_are_random_and_never_carry_the_serial(make_device: MakeDevice) -> None:
    made = [make_device(f"C3H2401{i:04d}") for i in range(50)]
    tokens = {d.token for d in made}
    assert len(tokens) == 50
    for device in made:
        # token_urlsafe(16): 22 characters of base64url = 128 random bits.
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", device.token)
        url = devices.device_url(device)
        assert device.serial not in url.upper() and device.serial[-4:] not in device.token


def test_revoke_kills_the_old_link(make_device: MakeDevice, runner: FlaskCliRunner) -> None:
    device = make_device()
    old = device.token
    result = runner.invoke(args=["qr", "revoke", device.serial, "--yes"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert devices.by_token(old) is None
    fresh = devices.by_serial(device.serial)
    assert fresh is not None and fresh.token != old
    assert devices.by_token(fresh.token) is not None
    assert fresh.token in result.output
    assert devices.by_token("no-such-token") is None


def test_by_serial_normalises_case_and_spaces(make_device: MakeDevice) -> None:
    device = make_device("C3H24010001")
    assert devices.by_serial(" c3h 2401 0001 ") is device
    assert devices.by_serial("C3H2401") is None


def test_batch_lookup_keeps_order_and_collapses_duplicates(make_device: MakeDevice) -> None:
    make_device("C3H24010001", purchase_date=date(2024, 1, 2))
    make_device("C3H24010002")
    result = devices.batch_lookup(["C3H24010002", "nope1234", "c3h24010001", "C3H24010002", ""])
    assert [serial for serial, _, _ in result] == ["C3H24010002", "NOPE1234", "C3H24010001"]
    assert result[1][1] is None and result[1][2] is None
    status = result[2][2]
    assert status is not None and status.basis == "purchase"
    with pytest.raises(devices.DeviceError, match="100"):
        devices.batch_lookup([f"SN{i:06d}" for i in range(101)])


def test_register_installation(ctx: Flask, make_device: MakeDevice) -> None:
    device = make_device(ship_date=date(2024, 1, 1))
    pending = Installer(phone="13900000001", name="李工")
    approved = Installer(phone="13900000002", name="王工", status="approved")
    other = Installer(phone="13900000003", name="赵工", status="approved")
    db.session.add_all([pending, approved, other])
    db.session.flush()
    with pytest.raises(devices.DeviceError, match="not approved"):
        devices.register_installation(device, pending, date(2024, 2, 1))
    with pytest.raises(devices.DeviceError, match="before the ship date"):
        devices.register_installation(device, approved, date(2023, 12, 1))
    devices.register_installation(device, approved, date(2024, 2, 1))
    assert (device.installed_on, device.installer_id) == (date(2024, 2, 1), approved.id)
    with pytest.raises(devices.DeviceError, match="another installer"):
        devices.register_installation(device, other, date(2024, 2, 2))


def test_faq_for_model_and_category_by_audience(camera: ProductModel, tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(
        '{"id": "wifi", "question": "配网失败", "answer": "用 2.4G", "products": ["as-c3h"]}\n'
        '{"id": "offline", "question": "离线", "answer": "重启", "products": ["Camera"]}\n'
        '{"id": "poe", "question": "PoE 接线", "answer": "T568B", "audience": "installer",'
        ' "products": ["camera"]}\n'
        '{"id": "lock", "question": "门锁没电", "answer": "应急供电", "products": ["lock"]}\n'
        '{"id": "general", "question": "发票", "answer": "找经销商"}\n',
        encoding="utf-8",
    )
    kb.upsert(kb.read_file(path))
    db.session.commit()
    assert [e.id for e in devices.faq_for(camera)] == ["wifi", "offline"]
    assert [e.id for e in devices.faq_for(camera, installer=True)] == ["wifi", "offline", "poe"]
    exported = kb.export("jsonl")
    assert '"products": ["AS-C3H"]' in exported and '"products": ["camera"]' in exported
    assert kb.export("csv").splitlines()[0].endswith(",products")
