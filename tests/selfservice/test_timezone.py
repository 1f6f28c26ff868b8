"""Dates are the maker's: warranty ends and "today" follow TIMEZONE, not UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kefu import create_app, timeutil
from kefu.catalog.models import Device
from kefu.extensions import db

from .conftest import Catalog, csrf_from, log_in


def test_today_is_the_date_in_timezone(app: Flask) -> None:
    # 07:30 in Beijing on 2 December is still 1 December in UTC.
    at = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    with app.app_context():
        assert timeutil.today(at) == date(2026, 12, 2)
        app.config["TIMEZONE"] = "UTC"
        assert timeutil.today(at) == date(2026, 12, 1)


def _zone_with_another_date() -> tuple[str, date]:
    """A zone whose date differs from UTC's right now (one of the two always does)."""
    now = datetime.now(UTC)
    for name in ("Etc/GMT-14", "Etc/GMT+12"):
        local = timeutil.zone(name)
        if now.astimezone(local).date() != now.date():
            return name, now.astimezone(local).date()
    raise AssertionError("unreachable")


def _ends_on(app: Flask, device_id: int, end: date) -> None:
    with app.app_context():
        device = db.session.get(Device, device_id)
        assert device is not None
        device.warranty_end_override = end
        db.session.commit()


def test_a_warranty_that_ended_yesterday_locally_is_out_of_warranty(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    name, local_today = _zone_with_another_date()
    app.config["TIMEZONE"] = name
    yesterday = local_today - timedelta(days=1)
    _ends_on(app, catalog.in_warranty.id, yesterday)
    html = client.get(f"/d/{catalog.in_warranty.token}").get_data(as_text=True)
    if local_today > datetime.now(UTC).date():
        # Ahead of UTC: by UTC's calendar the warranty would still run today.
        assert "已过保修期" in html and f"{yesterday.isoformat()} 到期" in html
    else:
        assert "已过保修期" in html
    _ends_on(app, catalog.in_warranty.id, local_today)
    html = client.get(f"/d/{catalog.in_warranty.token}").get_data(as_text=True)
    assert "在保修期内" in html  # the last day is covered, whatever UTC says


def test_the_date_picker_and_the_future_check_use_the_local_date(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    name, local_today = _zone_with_another_date()
    app.config["TIMEZONE"] = name
    log_in(client)
    url = f"/d/{catalog.ship_only.token}"
    assert f'max="{local_today.isoformat()}"' in client.get(url).get_data(as_text=True)
    token = csrf_from(client, url)
    client.post(
        f"{url}/install", data={"installed_on": local_today.isoformat(), "csrf_token": token}
    )
    # Ahead of UTC, "today" here is tomorrow in UTC: it must not be refused as the future.
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None and device.installed_on == local_today


def test_an_unknown_timezone_fails_at_start(database_url: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        create_app(
            {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "TIMEZONE": "Mars/Olympus"}
        )
