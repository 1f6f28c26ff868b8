"""Catalogue import (all or nothing) and the idempotent demo."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from kefu.catalog import devices
from kefu.catalog.models import Device, Firmware, Installer, KbEntryProduct, Manual, ProductModel
from kefu.catalog.warranty import compute
from kefu.extensions import db
from kefu.models import KbEntry


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def _catalogue(media: Path) -> dict:
    (media / "manuals").mkdir(parents=True)
    (media / "manuals" / "c3h.pdf").write_bytes(b"%PDF-1.4 demo")
    (media / "fw").mkdir()
    (media / "fw" / "c3h-1.bin").write_bytes(b"firmware")
    return {
        "series": [
            {
                "code": "C-Series",
                "name": "C 系列",
                "name_en": "C Series",
                "category": "camera",
                "warranty_months": 24,
                "models": [
                    {
                        "code": "as-c3h",
                        "name": "C3H 摄像机",
                        "name_en": "C3H camera",
                        "manuals": [
                            {"title": "说明书", "title_en": "Manual", "file": "manuals/c3h.pdf"}
                        ],
                        "firmware": [
                            {
                                "version": "V1.0",
                                "released_on": "2025-01-02",
                                "notes": "首个版本",
                                "url": "fw/c3h-1.bin",
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_catalogue_import_fills_sizes_and_checksums(
    runner: FlaskCliRunner, ctx: Flask, tmp_path: Path
) -> None:
    media = Path(ctx.config["MEDIA_ROOT"])
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(_catalogue(media), ensure_ascii=False), encoding="utf-8")
    for _ in range(2):
        result = runner.invoke(args=["catalog", "import", str(path)])
        assert result.exit_code == 0, result.output
    model = db.session.scalar(select(ProductModel))
    assert model is not None and model.code == "AS-C3H"
    assert [m.size_bytes for m in model.manuals] == [len(b"%PDF-1.4 demo")]
    assert model.firmware[0].sha256 == hashlib.sha256(b"firmware").hexdigest()
    assert (_count(Manual), _count(Firmware)) == (1, 1)


def test_catalogue_errors_name_the_place_and_import_nothing(
    runner: FlaskCliRunner, ctx: Flask, tmp_path: Path
) -> None:
    data = _catalogue(Path(ctx.config["MEDIA_ROOT"]))
    model = data["series"][0]["models"][0]
    model["manuals"][0]["file"] = "manuals/missing.pdf"
    model["firmware"][0]["sha256"] = "0" * 64
    data["series"][0]["category"] = "toaster"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = runner.invoke(args=["catalog", "import", str(path)])
    assert result.exit_code == 1
    assert "series[0].category" in result.output
    assert "series[0].models[0].manuals[0].file" in result.output
    assert "series[0].models[0].firmware[0].sha256" in result.output
    assert "nothing imported" in result.output
    assert _count(ProductModel) == 0


def test_demo_loads_a_usable_catalogue_and_is_idempotent(
    runner: FlaskCliRunner, ctx: Flask
) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "13800000000" in result.output and "demo1234" in result.output
    tokens = dict(db.session.execute(select(Device.serial, Device.token)).all())
    counts = [_count(t) for t in (Device, ProductModel, Manual, Firmware, KbEntry, KbEntryProduct)]
    assert 25 <= len(tokens) <= 40
    assert _count(ProductModel) >= 8

    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "0 new, 0 updated" in result.output
    db.session.expire_all()
    assert dict(db.session.execute(select(Device.serial, Device.token)).all()) == tokens
    assert [
        _count(t) for t in (Device, ProductModel, Manual, Firmware, KbEntry, KbEntryProduct)
    ] == counts
    assert _count(Installer) == 1

    # A mix of warranty situations, and every manual file exists.
    statuses = [compute(d) for d in db.session.scalars(select(Device))]
    assert any(s.in_warranty for s in statuses) and any(not s.in_warranty for s in statuses)
    assert {s.basis for s in statuses} == {
        "purchase",
        "installation",
        "ship",
        "override",
        "unknown",
    }
    media = Path(ctx.config["MEDIA_ROOT"])
    for manual in db.session.scalars(select(Manual)):
        assert (media / manual.file).read_bytes().startswith(b"%PDF")
    installer = db.session.scalar(select(Installer))
    assert installer is not None and installer.is_active and installer.check_password("demo1234")
    model = db.session.scalar(select(ProductModel).where(ProductModel.code == "AS-P4B"))
    assert model is not None
    assert any(e.audience == "installer" for e in devices.faq_for(model, installer=True))
    assert all(e.audience != "installer" for e in devices.faq_for(model))
