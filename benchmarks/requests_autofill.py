"""Benchmark: how much of a ticket the robot fills or checks, and how many chat turns it takes.

    .venv/bin/python benchmarks/requests_autofill.py [--sqlite]

On a scratch database (PostgreSQL by default, KEFU_BENCH_PG; --sqlite for a temporary file) the
demo data is loaded, then one repair request per demo device is filed through the chat form,
as a customer would type it, twice: once after scanning the device's label (the device is
known: the registered-device case, target at most 6 turns) and once typing the serial; then
each scanning customer comes back with another device (a returning customer). For
every ticket the share of its fields (validation.TICKET_FIELDS) is counted:

- filled automatically: the value came from the system (registry, warranty rule, triage,
  duplicate and risk checks, the customer's earlier ticket), not typed;
- filled or checked automatically: the above, plus typed values a rule checked (phone,
  address, name, fault, serial format).

The maker's reference figure is 85% of ticket information filled automatically.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from device_page import scratch_database  # noqa: E402

CUSTOMERS = (
    ("画面模糊，晚上看不清", "陈先生", "13957182046", "浙江省杭州市西湖区文三路 259 号 1203 室"),
    (
        "设备经常离线，重启后好一会儿又掉线",
        "刘女士",
        "13816254907",
        "上海市闵行区七莘路 1885 号 5 号楼",
    ),
    ("按键没反应，指示灯不亮", "王建国", "18662517390", "江苏省苏州市工业园区星湖街 328 号 12 幢"),
)
CHECKED_BY_RULE = {
    "serial",
    "fault",
    "contact_name",
    "phone",
    "address",
    "purchase_date",
    "request_type",
}


def file_request(
    openid: str, device_serial: str, scanned: bool, k: int, returning: bool = False
) -> tuple[int, dict]:
    """One request through the chat form; (turns, the ticket's field table)."""
    from sqlalchemy import select

    from kefu import dialog
    from kefu.extensions import db
    from kefu.models import ChatMessage
    from kefu.requests import chat
    from kefu.tickets.models import Ticket, ValidationRun

    now = datetime.now(UTC)
    fault, name, _phone, address = CUSTOMERS[k % len(CUSTOMERS)]
    # A different customer each time (the same phone on one device would be a duplicate).
    phone = f"13{5 + k % 4}{(73914826 + 7919 * k + (0 if scanned else 4999)) % 10**8:08d}"
    if scanned:
        from kefu.catalog import devices

        dialog.set_device(openid, devices.by_serial(device_serial).id, now)
    answers = [] if scanned else [device_serial.lower()]
    # A returning customer's contact details come from their earlier ticket (confirmed in the
    # summary), so only the fault is asked.
    answers += [fault] if returning else [fault, name, phone, address]
    reply = chat.handle_text(openid, "我要报修", now) or ""
    for answer in answers:
        db.session.add(ChatMessage(openid=openid, direction="in", text=answer, created_at=now))
        reply = chat.handle_text(openid, answer, now) or ""
    if "什么时候买" in reply:
        reply = chat.handle_text(openid, "去年三月", now) or ""
    reply = chat.handle_text(openid, "确认", now) or ""
    ticket = db.session.scalar(
        select(Ticket).where(Ticket.openid == openid).order_by(Ticket.id.desc()).limit(1)
    )
    if ticket is None:
        raise RuntimeError(f"no ticket for {device_serial}: {reply}")
    run = db.session.scalars(
        select(ValidationRun).where(ValidationRun.ticket_id == ticket.id)
    ).one()
    db.session.commit()
    return int(run.values["chat_turns"]), ticket.fields


def main() -> None:
    """Load the demo, file the requests, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import select

    from kefu import create_app
    from kefu.catalog import demo
    from kefu.catalog.models import Device
    from kefu.extensions import db
    from kefu.requests import validation

    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.sqlite, tmp) as url:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": url,
                "SECRET_KEY": "bench",
                "MEDIA_ROOT": os.path.join(tmp, "media"),
                "REDIS_URL": "",
                "JOBS_EAGER": True,
                "PROOF_ROOT": os.path.join(tmp, "proofs"),
            }
        )
        with app.app_context():
            upgrade()
            demo.run(echo=lambda _line: None)
            serials = list(db.session.scalars(select(Device.serial).order_by(Device.serial)))
            results: dict[str, list[tuple[int, dict]]] = {
                "scanned": [],
                "typed": [],
                "returning": [],
            }
            for i, serial in enumerate(serials):
                for how in ("scanned", "typed"):
                    results[how].append(
                        file_request(f"bench_{how}_{i}", serial, how == "scanned", i)
                    )
            # The customers of the scanned path come back with their next device.
            for i in range(len(serials)):
                results["returning"].append(
                    file_request(
                        f"bench_scanned_{i}",
                        serials[(i + 1) % len(serials)],
                        True,
                        i,
                        returning=True,
                    )
                )
            db.session.remove()
            db.engine.dispose()

    total_fields = len(validation.TICKET_FIELDS)
    print(f"demo devices: {len(serials)}; ticket fields counted: {total_fields}")
    print(
        f"{'path':<10} {'tickets':>7} {'turns min/median/max':>22} {'auto-filled':>12} "
        f"{'auto-filled or checked':>23}"
    )
    for how, rows in results.items():
        turns = [t for t, _ in rows]
        auto = [
            sum(1 for f in fields.values() if f["source"] != "user") / total_fields
            for _, fields in rows
        ]
        checked = [
            sum(
                1
                for name, f in fields.items()
                if f["source"] != "user" or (name in CHECKED_BY_RULE and f["value"])
            )
            / total_fields
            for _, fields in rows
        ]
        print(
            f"{how:<10} {len(rows):>7} "
            f"{min(turns):>10}/{statistics.median(turns):g}/{max(turns):<9} "
            f"{100 * statistics.mean(auto):>11.1f}% {100 * statistics.mean(checked):>22.1f}%"
        )
    over = [s for s, (t, _) in zip(serials, results["scanned"], strict=True) if t > 6]
    print(f"registered devices over 6 turns: {', '.join(over) or 'none'}")
    for how, rows in results.items():
        typed = sorted(
            {n for _, fields in rows for n, f in fields.items() if f["source"] == "user"}
        )
        print(f"typed by the customer ({how}): {', '.join(typed)}")


if __name__ == "__main__":
    main()
