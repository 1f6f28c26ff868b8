"""A serial in a chat warranty question gets that device's warranty, as the public lookup says."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

from kefu import chat_context, dialog
from kefu.catalog.warranty import compute
from kefu.extensions import db

from .conftest import Catalog


def test_serial_in_a_warranty_question_gets_that_devices_warranty(
    app: Flask, catalog: Catalog
) -> None:
    with app.app_context():
        inside = db.session.merge(catalog.in_warranty)
        end = compute(inside).end
        reply = dialog.respond("o_w1", f"我的{catalog.in_warranty.serial.lower()}还在保修吗")
        assert reply.outcome == "answer"
        assert "在保修期内" in reply.text and end is not None and end.isoformat() in reply.text
        outside = dialog.respond("o_w2", f"{catalog.out_of_warranty.serial} 過保了嗎")
        assert "已过保修期" in outside.text
        # Without a warranty word the serial only says which product the message is about.
        assert chat_context.warranty_reply(f"{catalog.in_warranty.serial} 画面黑屏") is None
        assert chat_context.products_for(f"{catalog.in_warranty.serial} 画面黑屏") == {
            "AS-C3H",
            "camera",
        }
        db.session.rollback()


def test_scanned_device_names_the_product(app: Flask, catalog: Catalog) -> None:
    with app.app_context():
        dialog.set_device("o_scan", catalog.bare.id, datetime.now(UTC))
        db.session.flush()
        scanned = dialog.current_device("o_scan")
        assert "lock" in chat_context.products_for("电池怎么换", scanned)
        # A model code in the message wins over the scanned device.
        assert chat_context.products_for("AS-C3H 怎么配网", scanned) == {"AS-C3H", "camera"}
        db.session.rollback()


def test_the_same_complaint_twice_reaches_a_person(app: Flask) -> None:
    with app.app_context():
        first = dialog.respond("o_rep", "门锁又坏了，上次说的办法没有用")
        assert first.outcome != "handoff"
        again = dialog.respond("o_rep", "门锁又坏了，上次说的办法没有用！")
        assert again.outcome == "handoff" and again.reason == "repeated_failure"
        db.session.rollback()


def test_chat_serial_lookups_share_the_public_lookups_allowance(
    app: Flask, catalog: Catalog
) -> None:
    import uuid

    app.config["WARRANTY_LOOKUP_LIMIT"] = "3/minute"
    # Counters live in the shared Redis: users of their own, so a rerun starts at zero.
    harvester, other = f"o_harvest_{uuid.uuid4().hex}", f"o_other_{uuid.uuid4().hex}"
    serials = [catalog.in_warranty.serial, catalog.out_of_warranty.serial, "C3H26109999"]
    with app.app_context():
        replies = [dialog.respond(harvester, f"{s}还在保修吗").text for s in serials]
        assert "在保修期内" in replies[0] and "已过保修期" in replies[1]
        # The fourth lookup in a minute tells nothing about the serial, known or not.
        limited = dialog.respond(harvester, f"{catalog.in_warranty.serial}还在保修吗")
        assert limited.text == chat_context.LOOKUP_LIMITED
        # Another user has an allowance of their own.
        assert "在保修期内" in dialog.respond(other, f"{serials[0]}保修到什么时候").text
        db.session.rollback()
