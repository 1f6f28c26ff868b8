"""An installer cannot move a warranty's start: the registered date counts only within the
window after shipping; otherwise it is flagged for staff. Every registration is audited."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from kefu import timeutil
from kefu.catalog import devices
from kefu.catalog.models import Device, InstallationStatus
from kefu.catalog.warranty import compute
from kefu.extensions import db

from .conftest import Catalog, csrf_from, log_in


def register(client: FlaskClient, token: str, day: date) -> str:
    url = f"/d/{token}"
    csrf = csrf_from(client, url)
    response = client.post(
        f"{url}/install", data={"installed_on": day.isoformat(), "csrf_token": csrf}
    )
    assert response.status_code == 302
    return client.get(url).get_data(as_text=True)


def shipped(app: Flask, device_id: int, days_ago: int) -> date:
    with app.app_context():
        device = db.session.get(Device, device_id)
        assert device is not None
        device.ship_date = timeutil.today() - timedelta(days=days_ago)
        db.session.commit()
        return device.ship_date


def test_a_date_inside_the_window_starts_the_warranty(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    ship = shipped(app, catalog.ship_only.id, 400)
    log_in(client)
    html = register(client, catalog.ship_only.token, ship + timedelta(days=170))
    assert "安装登记日期" in html and "待客服审核" not in html
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None
        assert device.installation_status == InstallationStatus.COUNTED
        assert compute(device).start == ship + timedelta(days=170)


def test_a_late_date_is_kept_flagged_and_not_used(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, catalog: Catalog, installer: int
) -> None:
    ship = shipped(app, catalog.ship_only.id, 1000)
    log_in(client)
    late = ship + timedelta(days=600)  # would add 20 months of cover
    html = register(client, catalog.ship_only.token, late)
    assert "需客服审核后才作为保修起算日期" in html and "待客服审核，未用于保修" in html
    assert "出厂日期加宽限期" in html  # the basis stays the ship date
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None and device.installed_on == late
        assert device.installation_status == InstallationStatus.FLAGGED
        status = compute(device)
        assert status.basis == "ship" and status.start == ship + timedelta(days=90)
        assert not status.in_warranty  # 24 months from ship + 90 days ended long ago
        (entry,) = devices.installation_history(device)
        assert entry.actor == f"installer:{installer}"
        assert entry.before is not None and entry.before["installed_on"] is None
        assert entry.after == {
            "serial": catalog.ship_only.serial,
            "installed_on": late.isoformat(),
            "installer_id": installer,
            "installation_status": "flagged",
        }
        assert entry.note is not None and "after the installation window" in entry.note
    listed = runner.invoke(args=["devices", "installations"])
    assert listed.exit_code == 0 and catalog.ship_only.serial in listed.output
    assert late.isoformat() in listed.output and "13800000001" in listed.output
    accepted = runner.invoke(
        args=["devices", "accept-installation", catalog.ship_only.serial, "--note", "invoice seen"]
    )
    assert accepted.exit_code == 0, accepted.output
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None and compute(device).basis == "installation"
        accepted_entry = devices.installation_history(device)[-1]
        assert accepted_entry.actor == "system" and accepted_entry.note == "invoice seen"
        assert accepted_entry.after is not None
        assert accepted_entry.after["installation_status"] == "counted"
    assert catalog.ship_only.serial not in runner.invoke(args=["devices", "installations"]).output


def test_without_a_ship_date_the_date_cannot_be_checked(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    log_in(client)
    html = register(client, catalog.no_dates.token, timeutil.today() - timedelta(days=5))
    assert "待客服审核，未用于保修" in html and "暂无保修起算日期" in html


def test_every_correction_is_recorded(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    ship = shipped(app, catalog.ship_only.id, 100)
    log_in(client)
    register(client, catalog.ship_only.token, ship + timedelta(days=10))
    register(client, catalog.ship_only.token, ship + timedelta(days=30))
    with app.app_context():
        device = db.session.get(Device, catalog.ship_only.id)
        assert device is not None
        history = [
            (e.before["installed_on"], e.after["installed_on"])  # type: ignore[index]
            for e in devices.installation_history(device)
        ]
        assert history == [
            (None, (ship + timedelta(days=10)).isoformat()),
            ((ship + timedelta(days=10)).isoformat(), (ship + timedelta(days=30)).isoformat()),
        ]


def test_the_window_is_a_setting(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    app.config["INSTALL_WINDOW_DAYS"] = 10
    ship = shipped(app, catalog.ship_only.id, 100)
    log_in(client)
    assert "待客服审核" in register(client, catalog.ship_only.token, ship + timedelta(days=11))
