"""Devices: lookup by token or serial, links, revocation, installation, batch lookup, CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.orm import joinedload

from .. import audit, timeutil
from ..errors import BilingualError
from ..extensions import db
from ..imports import ImportError_, read_text
from ..models import KbEntry, utcnow
from . import gs1
from .models import (
    Device,
    InstallationStatus,
    Installer,
    KbEntryProduct,
    ProductModel,
    Series,
    new_token,
)
from .warranty import WarrantyStatus, compute

# Serials as printed by the factory: letters, digits and - _ . only, so they survive CSV,
# URLs (GS1 Digital Link) and being read out over the phone.
SERIAL_RE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{3,63}$")
MAX_BATCH = 100
# Audit-log actions of installation registration.
INSTALLATION_REGISTERED = "device.installation_registered"
INSTALLATION_ACCEPTED = "device.installation_accepted"
CHUNK = 1000

Progress = Callable[[int, int], None]

# Columns the import understands; "serial" and "model" are required.
IMPORT_COLUMNS = (
    "serial",
    "model",
    "gtin",
    "ship_date",
    "purchase_date",
    "installed_on",
    "dealer",
    "warranty_extension_months",
    "warranty_end_override",
)
# Columns written by the export that an import of the same file ignores (computed or linked).
EXPORT_ONLY_COLUMNS = ("url", "installer_phone", "warranty_end", "warranty_basis")
EXPORT_COLUMNS = (
    "serial",
    "model",
    "url",
    "gtin",
    "ship_date",
    "purchase_date",
    "installed_on",
    "installer_phone",
    "dealer",
    "warranty_extension_months",
    "warranty_end_override",
    "warranty_end",
    "warranty_basis",
)
_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


class DeviceError(BilingualError):
    """A refused device operation, with its reason in Chinese and English."""


def normalise_serial(serial: str) -> str:
    """A serial as stored: upper case, without spaces (people type them every which way)."""
    return "".join(serial.split()).upper()


def is_valid_serial(serial: str) -> bool:
    """True when ``serial`` (after normalising) looks like one the factory prints."""
    return bool(SERIAL_RE.match(normalise_serial(serial)))


def by_token(token: str) -> Device | None:
    """The device whose QR link carries ``token``; None for unknown and revoked tokens alike."""
    if not token or len(token) > 64:
        return None
    # The page needs the model and series too (warranty months): one query, not three.
    return db.session.scalar(
        select(Device)
        .where(Device.token == token)
        .options(joinedload(Device.model).joinedload(ProductModel.series))
    )


def by_serial(serial: str) -> Device | None:
    """The device with this serial (case and spaces do not matter), or None."""
    normalised = normalise_serial(serial)
    if not SERIAL_RE.match(normalised):
        return None
    return db.session.scalar(select(Device).where(Device.serial == normalised))


def device_url(device: Device) -> str:
    """The device's permanent QR link: PUBLIC_BASE_URL + /d/ + its token."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/d/{device.token}"


def revoke(device: Device) -> str:
    """Give the device a new token, so its old link stops working; return the new token."""
    device.token = new_token()
    return device.token


def faq_for(model: ProductModel, installer: bool = False) -> list[KbEntry]:
    """KB entries tied to this model or its category: the model's own first, then by id."""
    audiences = ["all", "end_user"] + (["installer"] if installer else [])
    rows = db.session.execute(
        select(KbEntry, KbEntryProduct.product)
        .join(KbEntryProduct, KbEntryProduct.kb_entry_id == KbEntry.id)
        .where(
            KbEntryProduct.product.in_([model.code, model.series.category]),
            KbEntry.audience.in_(audiences),
        )
    ).all()
    specific: dict[str, bool] = {}
    entries: dict[str, KbEntry] = {}
    for entry, product in rows:
        entries[entry.id] = entry
        specific[entry.id] = specific.get(entry.id, False) or product == model.code
    return sorted(entries.values(), key=lambda e: (not specific[e.id], e.id))


def install_window_days() -> int:
    """Days after shipping within which a registered installation date may start the warranty."""
    return int(current_app.config.get("INSTALL_WINDOW_DAYS", 180))


def register_installation(
    device: Device, installer: Installer, installed_on: date
) -> InstallationStatus:
    """Record that ``installer`` installed ``device`` on ``installed_on`` (the caller commits).

    The date is the warranty basis only within INSTALL_WINDOW_DAYS after shipping; a later date
    (or one for a device without a ship date) is kept but flagged for staff, so registering
    cannot move a warranty's start. Every registration goes into the audit log.
    """
    if installer.status != "approved":
        raise DeviceError("安装商账号尚未通过审核", "the installer account is not approved")
    today = timeutil.today()
    if installed_on > today:
        raise DeviceError("安装日期不能晚于今天", "the installation date is in the future")
    if device.ship_date is not None and installed_on < device.ship_date:
        raise DeviceError("安装日期早于出厂日期", "the installation date is before the ship date")
    if device.installer_id is not None and device.installer_id != installer.id:
        raise DeviceError(
            "该设备已由其他安装商登记，如需更正请联系客服",
            "another installer registered this device; contact support to correct it",
        )
    window_end = (
        device.ship_date + timedelta(days=install_window_days()) if device.ship_date else None
    )
    status = (
        InstallationStatus.COUNTED
        if window_end is not None and installed_on <= window_end
        else InstallationStatus.FLAGGED
    )
    before = _installation_state(device)
    device.installer_id = installer.id
    device.installed_on = installed_on
    device.installation_status = status
    audit.record(
        f"installer:{installer.id}",
        INSTALLATION_REGISTERED,
        "device",
        str(device.id),
        before=before,
        after=_installation_state(device),
        note=None if status == InstallationStatus.COUNTED else _flag_note(window_end),
    )
    return status


def _installation_state(device: Device) -> dict[str, Any]:
    return {
        "serial": device.serial,
        "installed_on": device.installed_on,
        "installer_id": device.installer_id,
        "installation_status": device.installation_status,
    }


def _flag_note(window_end: date | None) -> str:
    if window_end is None:
        return "flagged: no ship date on record, the date cannot be checked"
    return f"flagged: after the installation window (it ended {window_end.isoformat()})"


def flagged_installations() -> list[Device]:
    """Devices whose registered installation date waits for a staff decision, oldest first."""
    return list(
        db.session.scalars(
            select(Device)
            .options(joinedload(Device.installer), joinedload(Device.model))
            .where(Device.installation_status == InstallationStatus.FLAGGED)
            .order_by(Device.installed_on, Device.serial)
        )
    )


def accept_installation(device: Device, note: str, actor: str = "system") -> None:
    """Staff accept a flagged installation date as the warranty basis (the caller commits)."""
    if device.installation_status != InstallationStatus.FLAGGED or device.installed_on is None:
        raise DeviceError("该设备没有待审核的安装登记", "no flagged installation on this device")
    before = _installation_state(device)
    device.installation_status = InstallationStatus.COUNTED
    audit.record(
        actor,
        INSTALLATION_ACCEPTED,
        "device",
        str(device.id),
        before=before,
        after=_installation_state(device),
        note=note,
    )


def installation_history(device: Device) -> list[audit.AuditEntry]:
    """Every installation registration and staff decision for ``device``, oldest first."""
    return [
        entry
        for entry in audit.history("device", str(device.id))
        if entry.action in {INSTALLATION_REGISTERED, INSTALLATION_ACCEPTED}
    ]


def batch_lookup(serials: list[str]) -> list[tuple[str, Device | None, WarrantyStatus | None]]:
    """Look up to 100 serials at once, in input order, duplicates collapsed; unknown -> None."""
    wanted = list(dict.fromkeys(s for s in (normalise_serial(x) for x in serials) if s))
    # Malformed serials are answered "not found" without a query (and never reach the database:
    # PostgreSQL refuses a NUL byte in a parameter).
    valid = [s for s in wanted if SERIAL_RE.match(s)]
    if len(wanted) > MAX_BATCH:
        raise DeviceError(
            f"一次最多查询 {MAX_BATCH} 个序列号（收到 {len(wanted)} 个）",
            f"at most {MAX_BATCH} serials at a time ({len(wanted)} given)",
        )
    found = {
        d.serial: d
        for d in db.session.scalars(
            select(Device)
            .options(joinedload(Device.model).joinedload(ProductModel.series))
            .where(Device.serial.in_(valid))
        )
    }
    today = timeutil.today()
    result: list[tuple[str, Device | None, WarrantyStatus | None]] = []
    for serial in wanted:
        device = found.get(serial)
        result.append((serial, device, compute(device, today) if device else None))
    return result


# --- CSV import and export -------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRow:
    """A validated CSV line: serial, model id and the optional columns the file has."""

    line: int
    serial: str
    model_id: int
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    created: int
    updated: int
    unchanged: int


def read_file(path: Path) -> list[DeviceRow]:
    """Read and validate a device CSV (UTF-8 or GBK); raise ImportError_ naming every bad line."""
    return parse_csv(read_text(path, spreadsheet=True))


def csv_problem(exc: csv.Error, line: int) -> DeviceError:
    """A CSV file the csv module cannot read, as a reason naming the line (zh, en)."""
    if "field larger" in str(exc):
        return DeviceError(
            f"第 {line} 行：单元格超过 128 KB，这不像序列号文件",
            f"line {line}: a cell is over 128 KB, this is not a serial number file",
        )
    return DeviceError(
        f"第 {line} 行：引号未闭合或位置不对（{exc}）",
        f"line {line}: an unclosed or misplaced quote ({exc})",
    )


def parse_csv(text: str) -> list[DeviceRow]:
    """Validate device CSV text against the catalogue; all errors at once, or every row."""
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        return _parse_records(reader)
    except csv.Error as exc:
        problem = csv_problem(exc, reader.line_num)
        raise ImportError_([f"{problem.zh} / {problem.en}"]) from exc


def _parse_records(reader: csv.DictReader[str]) -> list[DeviceRow]:
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [name for name in ("serial", "model") if name not in header]
    unknown = [n for n in header if n not in IMPORT_COLUMNS and n not in EXPORT_ONLY_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"缺少列 / missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"未知列 / unknown columns: {', '.join(unknown)}")
        raise ImportError_([f"第 1 行 / line 1: {'; '.join(problems)}"])
    optional = [n for n in IMPORT_COLUMNS[2:] if n in header]
    models = {
        code.upper(): mid
        for mid, code in db.session.execute(select(ProductModel.id, ProductModel.code))
    }
    today = timeutil.today()
    errors: list[str] = []
    rows: list[DeviceRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        number = reader.line_num
        if None in record:
            errors.append(
                f"第 {number} 行 / line {number}: 列数多于表头 / more fields than the header"
            )
            continue
        problems: list[str] = []
        serial = normalise_serial(record.get("serial") or "")
        if not serial:
            problems.append("serial 不能为空 / serial is empty")
        elif not SERIAL_RE.match(serial):
            problems.append(f"序列号格式不对（4-64 位字母、数字、-_.）/ invalid serial {serial!r}")
        elif serial in seen:
            problems.append(
                f"序列号与第 {seen[serial]} 行重复 / duplicate serial of line {seen[serial]}"
            )
        model_code = (record.get("model") or "").strip().upper()
        model_id = models.get(model_code)
        if not model_code:
            problems.append("model 不能为空 / model is empty")
        elif model_id is None:
            problems.append(f"未知型号 / unknown model {model_code!r}")
        values = {
            name: _parse_value(name, record.get(name) or "", today, problems) for name in optional
        }
        if problems:
            errors.append(f"第 {number} 行 / line {number}: " + "; ".join(problems))
            continue
        seen[serial] = number
        assert model_id is not None
        rows.append(DeviceRow(number, serial, model_id, values))
    if errors:
        raise ImportError_(errors)
    if not rows:
        raise ImportError_(["文件中没有设备 / the file has no devices"])
    return rows


def _parse_value(name: str, raw: str, today: date, problems: list[str]) -> Any:
    value = raw.strip()
    if name == "gtin":
        if not value:
            return None
        gtin = gs1.normalise_gtin(value)
        if gtin is None:
            problems.append(f"GTIN 无效（位数或校验位错误）/ invalid GTIN {value!r}")
        return gtin
    if name == "dealer":
        if len(value) > 200:
            problems.append("dealer 超过 200 字 / dealer is longer than 200 characters")
        return value or None
    if name == "warranty_extension_months":
        if not value:
            return 0
        if not value.isdigit() or int(value) > 120:
            problems.append(
                f"延保月数须为 0-120 的整数 / warranty_extension_months must be 0-120: {value!r}"
            )
            return 0
        return int(value)
    # The remaining columns are dates.
    if not value:
        return None
    parsed = _parse_date(value)
    if parsed is None:
        problems.append(f"{name} 日期格式应为 YYYY-MM-DD / {name} is not a date: {value!r}")
    elif name != "warranty_end_override" and parsed > today:
        problems.append(f"{name} 晚于今天 / {name} is in the future: {value}")
    return parsed


def _parse_date(value: str) -> date | None:
    match = _DATE_RE.match(value)
    if not match:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def import_rows(rows: list[DeviceRow], progress: Progress | None = None) -> ImportResult:
    """Insert or update devices by serial in the current session (the caller commits)."""
    created = updated = unchanged = 0
    names = ["model_id", *IMPORT_COLUMNS[2:]]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        columns = [getattr(Device, name) for name in names]
        existing = {
            row.serial: row
            for row in db.session.execute(
                select(Device.id, Device.serial, *columns).where(
                    Device.serial.in_([r.serial for r in chunk])
                )
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in chunk:
            wanted = {"model_id": row.model_id, **row.values}
            current = existing.get(row.serial)
            if current is None:
                # Token and timestamp set here: a bulk insert skips the ORM's per-object defaults.
                inserts.append(
                    {"serial": row.serial, "token": new_token(), "created_at": utcnow(), **wanted}
                )
                continue
            changed = {k: v for k, v in wanted.items() if getattr(current, k) != v}
            if changed:
                updates.append({"id": current.id, **changed})
            else:
                unchanged += 1
        if inserts:
            # executemany: one round trip per chunk instead of one per device.
            db.session.execute(insert(Device), inserts)
        # ORM bulk UPDATE by primary key wants the same keys in every dict: group by key set.
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for values in updates:
            groups.setdefault(tuple(sorted(values)), []).append(values)
        for group in groups.values():
            db.session.execute(update(Device), group)
        created += len(inserts)
        updated += len(updates)
        if progress is not None:
            progress(start + len(chunk), len(rows))
    return ImportResult(created, updated, unchanged)


def export_csv(out: TextIO, progress: Progress | None = None) -> int:
    """Write every device as CSV (serial, model, url and the rest); return how many."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    total = db.session.scalar(select(db.func.count(Device.id))) or 0
    today = timeutil.today()
    base = current_app.config["PUBLIC_BASE_URL"]
    count = 0
    for device in _all_devices():
        status = compute(device, today)
        writer.writerow(
            [
                device.serial,
                device.model.code,
                f"{base}/d/{device.token}",
                device.gtin or "",
                _iso(device.ship_date),
                _iso(device.purchase_date),
                _iso(device.installed_on),
                device.installer.phone if device.installer else "",
                device.dealer or "",
                device.warranty_extension_months,
                _iso(device.warranty_end_override),
                _iso(status.end),
                status.basis,
            ]
        )
        count += 1
        if progress is not None and (count % CHUNK == 0 or count == total):
            progress(count, total)
    return count


def _all_devices() -> Iterator[Device]:
    """Every device with its model, series and installer, streamed in chunks."""
    query = (
        select(Device)
        .options(
            joinedload(Device.model).joinedload(ProductModel.series),
            joinedload(Device.installer),
        )
        .order_by(Device.serial)
        .execution_options(yield_per=CHUNK)
    )
    yield from db.session.scalars(query)


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def by_serials(serials: Iterable[str]) -> tuple[list[Device], list[str]]:
    """Devices for the given serials in the given order, plus the serials not found."""
    wanted = list(dict.fromkeys(normalise_serial(s) for s in serials if s.strip()))
    found: dict[str, Device] = {}
    for start in range(0, len(wanted), CHUNK):
        found.update(
            (d.serial, d)
            for d in db.session.scalars(
                select(Device)
                .options(joinedload(Device.model).joinedload(ProductModel.series))
                .where(Device.serial.in_(wanted[start : start + CHUNK]))
            )
        )
    return [found[s] for s in wanted if s in found], [s for s in wanted if s not in found]


def all_for_labels() -> list[Device]:
    """Every device with its model, ordered by model then serial (how labels are stuck on)."""
    return list(
        db.session.scalars(
            select(Device)
            .join(Device.model)
            .join(ProductModel.series)
            .options(joinedload(Device.model).joinedload(ProductModel.series))
            .order_by(Series.code, ProductModel.code, Device.serial)
        )
    )
