"""Fixtures for the catalogue tests: a small catalogue and a device factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from kefu.catalog.models import Device, ProductModel, Series
from kefu.extensions import db

MakeDevice = Callable[..., Device]


@pytest.fixture
def ctx(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """An app context, with media written to a temporary folder."""
    app.config["MEDIA_ROOT"] = str(tmp_path / "media")
    with app.app_context():
        yield app


@pytest.fixture
def camera(ctx: Flask) -> ProductModel:
    """One camera model in a 24-month series."""
    series = Series(
        code="C-Series", name="C 系列", name_en="C Series", category="camera", warranty_months=24
    )
    model = ProductModel(code="AS-C3H", name="C3H 摄像机", name_en="C3H camera", series=series)
    db.session.add(model)
    db.session.commit()
    return model


@pytest.fixture
def make_device(camera: ProductModel) -> MakeDevice:
    """Create and commit a device of the camera model."""

    def make(serial: str = "C3H24010001", **fields: Any) -> Device:
        device = Device(serial=serial, model=camera, **fields)
        db.session.add(device)
        db.session.commit()
        return device

    return make


def d(text: str) -> date:
    """A date from ISO text."""
    return date.fromisoformat(text)
