"""Every rule of the validation engine, with what the user is told and what the agent sees."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from kefu.catalog.models import Device
from kefu.extensions import db
from kefu.requests import parsing, validation
from kefu.tickets.models import DeviceReport

from .conftest import Catalog
from .test_tickets import make_ticket

TODAY = date(2026, 12, 1)
GOOD = {
    "fault": "晚上画面发黑，红外灯不亮",
    "contact_name": "张先生",
    "phone": "13917384526",
    "address": "浙江省杭州市西湖区文三路100号",
}


def run(values: dict[str, Any], openid: str | None = "o_v") -> validation.Report:
    merged = {**GOOD, **values}
    merged = {k: v for k, v in merged.items() if v is not None}
    return validation.run(
        merged,
        {k: "user" for k in merged},
        openid=openid,
        today=datetime.now(UTC).date(),
        now=datetime.now(UTC),
    )


def outcome(report: validation.Report, code: str) -> bool | None:
    return next(r.passed for r in report.results if r.code == code)


@pytest.mark.parametrize(
    ("typed", "serial", "model"),
    [
        ("AS2024C3H000001", "AS2024C3H000001", None),
        ("as2024c3h000001", "AS2024C3H000001", None),
        ("ＡＳ２０２４Ｃ３Ｈ０００００１", "AS2024C3H000001", None),
        ("AS 2024 C3H 000 001", "AS2024C3H000001", None),
        ("AS-C3H AS2024C3H000001", "AS2024C3H000001", "AS-C3H"),
        ("型号：AS-C3H 序列号：AS2024C3H000001", "AS2024C3H000001", "AS-C3H"),
    ],
)
def test_serial_typed_every_which_way(
    app: Flask, catalog: Catalog, typed: str, serial: str, model: str | None
) -> None:
    with app.app_context():
        check = validation.check_serial(typed)
        assert check.error is None and check.value == serial and check.said_model == model
        assert check.fills["model"] == "AS-C3H" and check.fills["dealer"] == "杭州安居电子"


def test_serial_rules(app: Flask, catalog: Catalog) -> None:
    with app.app_context():
        bad = validation.check_serial("不知道")
        assert bad.error.code == "serial.format" and "AS2024C3H000001" in bad.error.message()
        assert "letters" in bad.error.message("en")
        unknown = run({"serial": "AS2099X000009"})
        assert unknown.ok and outcome(unknown, "serial.registered") is False
        assert "serial_unknown" in unknown.flags
        known = run({"serial": catalog.in_warranty.serial})
        assert known.ok and known.flags == [] and "dealer" in known.autofilled
        assert known.values["warranty_status"] == "in"
        mismatch = run({"serial": catalog.in_warranty.serial, "model_said": "AS-L1"})
        assert "model_mismatch" in mismatch.flags
        device = db.session.get(Device, catalog.in_warranty.id)
        db.session.add(DeviceReport(device_id=device.id, kind="stolen", note="报警回执"))
        db.session.flush()
        assert "device_reported" in run({"serial": device.serial}).flags


@pytest.mark.parametrize(
    ("typed", "ok"),
    [
        ("13917384526", True),
        ("139 1738 4526", True),
        ("139-1738-4526", True),
        ("+86 139 1738 4526", True),
        ("１３９１７３８４５２６", True),
        ("手机13917384526", True),
        ("12345678901", False),
        ("1391738452", False),
        ("139173845261", False),
        ("13888888888", False),
        ("13912345678", False),
        ("021-64381234", False),
        ("一三九一七三八四五二六", False),
        ("", False),
    ],
)
def test_mobile_numbers(app: Flask, typed: str, ok: bool) -> None:
    with app.app_context():
        check = validation.check_phone(typed)
        assert (check.error is None) is ok
        if ok:
            assert check.value == "13917384526"
        else:
            assert check.error.code == "phone.mainland" and "11 位" in check.error.message()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2025-03-01", date(2025, 3, 1)),
        ("2025/3/1", date(2025, 3, 1)),
        ("2025.3.1", date(2025, 3, 1)),
        ("2025年3月1日", date(2025, 3, 1)),
        ("2025年3月", date(2025, 3, 1)),
        ("去年三月", date(2025, 3, 1)),
        ("去年3月15号", date(2025, 3, 15)),
        ("3/1", date(2026, 3, 1)),
        ("十二月五号", date(2025, 12, 5)),
        ("昨天", date(2026, 11, 30)),
        ("上个月", date(2026, 11, 1)),
        ("２０２５－０３－０１", date(2025, 3, 1)),
        ("2025-02-30", None),
        ("很久以前", None),
        ("13/45", None),
    ],
)
def test_dates_people_write(typed: str, expected: date | None) -> None:
    assert parsing.parse_date(typed, TODAY) == expected


def test_date_rules(app: Flask, catalog: Catalog) -> None:
    with app.app_context():
        today = datetime.now(UTC).date()
        future = validation.check_purchase_date((today + timedelta(days=3)).isoformat(), today)
        assert future.error.code == "purchase_date.not_future"
        assert validation.check_purchase_date("某天", today).error.code == "purchase_date.format"
        early = run(
            {
                "serial": catalog.ship_only.serial,
                "purchase_date": (today - timedelta(days=400)).isoformat(),
            }
        )
        assert early.ok and "purchase_before_ship" in early.flags
        fine = run({"serial": catalog.ship_only.serial, "purchase_date": today.isoformat()})
        assert outcome(fine, "purchase_date.after_ship") is True


@pytest.mark.parametrize(
    ("field", "typed", "ok"),
    [
        ("address", "浙江省杭州市西湖区文三路100号3幢501室", True),
        ("address", "北京市朝阳区建国路八十八号", True),
        ("address", "杭州", False),
        ("address", "我家", False),
        ("address", "12345678", False),
        ("contact_name", "张先生", True),
        ("contact_name", "我叫李红", True),
        ("contact_name", "Tom Li", True),
        ("contact_name", "138", False),
        ("contact_name", "", False),
        ("fault", "晚上画面发黑", True),
        ("fault", "坏了", False),
        ("fault", "。。。", False),
    ],
)
def test_address_name_and_fault(app: Flask, field: str, typed: str, ok: bool) -> None:
    with app.app_context():
        check = validation.check_field(field, typed, TODAY)
        assert (check.error is None) is ok, check.error and check.error.message()


def test_policy_proof_warranty_duplicates_and_many_requests(app: Flask, catalog: Catalog) -> None:
    with app.app_context():
        # An in-warranty claim without a registered purchase date needs proof of purchase.
        claim = run({"serial": catalog.ship_only.serial, "request_type": "warranty"})
        assert not claim.ok and claim.errors[0].code == "proof.required"
        assert run(
            {
                "serial": catalog.ship_only.serial,
                "request_type": "warranty",
                "proof_sha256": "a" * 64,
            }
        ).ok
        assert run({"serial": catalog.in_warranty.serial, "request_type": "warranty"}).ok
        assert run({"serial": catalog.ship_only.serial}).ok  # a repair needs none
        late = run({"serial": catalog.out_of_warranty.serial, "request_type": "warranty"})
        assert late.ok and "warranty_claim_out_of_warranty" in late.flags
        # The same customer's open ticket is a duplicate; someone else's is a flag.
        mine = make_ticket("o_v", serial=catalog.in_warranty.serial)
        db.session.flush()
        dup = run({"serial": catalog.in_warranty.serial})
        assert dup.errors[0].code == "duplicate.open" and mine.number in dup.errors[0].message()
        other = run({"serial": catalog.in_warranty.serial, "phone": "13600001234"}, "o_x")
        assert other.ok and "device_has_open_ticket" in other.flags
        for i in range(3):
            make_ticket(f"o_{i}", serial=f"AS2099X00000{i}", phone="13517264839")
        db.session.flush()
        many = run({"serial": catalog.no_dates.serial, "phone": "13517264839"}, "o_y")
        assert many.ok and "phone_many_requests" in many.flags
        assert all(r.as_json()["outcome"] in {"pass", "fail", "skip"} for r in many.results)
        assert {r.code for r in many.results} >= set(validation.FLAGS) - {
            "duplicate.other_customer"
        }
