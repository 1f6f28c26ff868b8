"""GS1: GTIN check digits and Digital Link resolution."""

from __future__ import annotations

from collections.abc import Callable

from kefu.catalog import gs1
from kefu.catalog.models import Device

MakeDevice = Callable[..., Device]


def test_check_digit_of_known_gtins() -> None:
    assert gs1.check_digit("400638133393") == 1
    assert gs1.check_digit("0001234560001") == 2
    assert gs1.normalise_gtin("4006381333931") == "04006381333931"
    assert gs1.normalise_gtin("96385074") == "00000096385074"
    assert gs1.normalise_gtin("4006381333932") is None
    assert gs1.normalise_gtin("40063813339") is None
    assert gs1.normalise_gtin("40063813339x1") is None


def test_resolve_needs_the_devices_gtin(make_device: MakeDevice) -> None:
    device = make_device("P4B24010001", gtin="04006381333931")
    make_device("C3H24010002")
    assert gs1.resolve("4006381333931", "p4b24010001") is device
    assert gs1.resolve("04006381333931", "P4B24010001") is device
    assert gs1.resolve("4006381333932", "P4B24010001") is None  # bad check digit
    assert gs1.resolve("96385074", "P4B24010001") is None  # another trade item
    assert gs1.resolve("4006381333931", "C3H24010002") is None
    assert gs1.digital_link(device) == "https://kefu.example.com/01/04006381333931/21/P4B24010001"
