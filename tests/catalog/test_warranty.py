"""Warranty rules: start-date precedence, grace period, overrides, extensions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Flask

from kefu.catalog.models import Device
from kefu.catalog.warranty import add_months, compute

MakeDevice = Callable[..., Device]
d = date.fromisoformat


def test_purchase_beats_installation_and_ship(make_device: MakeDevice) -> None:
    device = make_device(
        ship_date=d("2023-01-10"), installed_on=d("2023-03-01"), purchase_date=d("2023-02-15")
    )
    status = compute(device, today=d("2025-02-14"))
    assert (status.basis, status.start, status.end) == (
        "purchase",
        d("2023-02-15"),
        d("2025-02-14"),
    )
    assert status.in_warranty
    assert not compute(device, today=d("2025-02-15")).in_warranty


def test_installation_beats_ship(make_device: MakeDevice) -> None:
    device = make_device(ship_date=d("2023-01-10"), installed_on=d("2023-03-01"))
    status = compute(device, today=d("2024-01-01"))
    assert (status.basis, status.start, status.end) == (
        "installation",
        d("2023-03-01"),
        d("2025-02-28"),
    )


def test_ship_date_plus_configured_grace(app: Flask, make_device: MakeDevice) -> None:
    device = make_device(ship_date=d("2023-01-01"))
    status = compute(device, today=d("2025-01-01"))
    # Default grace: 90 days after shipping.
    assert (status.basis, status.start, status.end) == ("ship", d("2023-04-01"), d("2025-03-31"))
    app.config["WARRANTY_SHIP_GRACE_DAYS"] = 30
    assert compute(device, today=d("2025-01-01")).start == d("2023-01-31")


def test_extension_adds_months(make_device: MakeDevice) -> None:
    device = make_device(purchase_date=d("2022-06-01"), warranty_extension_months=12)
    status = compute(device, today=d("2025-05-31"))
    assert status.end == d("2025-05-31")
    assert status.in_warranty
    assert (status.months, status.extension_months) == (24, 12)


def test_override_wins_even_against_an_expired_warranty(make_device: MakeDevice) -> None:
    device = make_device(purchase_date=d("2015-01-01"), warranty_end_override=d("2030-01-01"))
    status = compute(device, today=d("2026-01-01"))
    assert (status.basis, status.end, status.in_warranty) == ("override", d("2030-01-01"), True)
    assert status.start == d("2015-01-01")


def test_override_can_end_a_warranty_early(make_device: MakeDevice) -> None:
    device = make_device(purchase_date=d("2025-01-01"), warranty_end_override=d("2025-03-01"))
    assert not compute(device, today=d("2025-06-01")).in_warranty


def test_no_dates_is_unknown_and_not_covered(make_device: MakeDevice) -> None:
    status = compute(make_device(), today=d("2025-01-01"))
    assert (status.basis, status.start, status.end, status.in_warranty) == (
        "unknown",
        None,
        None,
        False,
    )


def test_months_clamp_to_month_end() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 11, 30), 3) == date(2024, 2, 29)
    assert add_months(date(2023, 5, 15), 24) == date(2025, 5, 15)
