"""GS1 identifiers: GTIN check digits and Digital Link paths (``/01/{GTIN}/21/{serial}``)."""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from .models import Device

GTIN_LENGTHS = (8, 12, 13, 14)


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for the digits of ``body`` (a GTIN without its last digit)."""
    # Weights alternate 3, 1, 3, ... starting from the digit next to the check digit.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def normalise_gtin(gtin: str) -> str | None:
    """A GTIN-8/12/13/14 as 14 digits (left-padded with zeros), or None if it is not valid."""
    gtin = gtin.strip()
    if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in GTIN_LENGTHS:
        return None
    if check_digit(gtin[:-1]) != int(gtin[-1]):
        return None
    return gtin.zfill(14)


def resolve(gtin: str, serial: str) -> Device | None:
    """The device with this GTIN and serial, or None (also when the check digit is wrong)."""
    from .devices import normalise_serial

    normalised = normalise_gtin(gtin)
    if normalised is None:
        return None
    # The serial alone would find the device, but a Digital Link names the trade item too:
    # only a device recorded with that GTIN answers, so made-up GTINs cannot probe serials.
    return db.session.scalar(
        select(Device).where(Device.serial == normalise_serial(serial), Device.gtin == normalised)
    )


def digital_link(device: Device) -> str | None:
    """The device's GS1 Digital Link URI on this site, or None when it has no GTIN."""
    if not device.gtin:
        return None
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/01/{device.gtin}/21/{quote(device.serial, safe='')}"
