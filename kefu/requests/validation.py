"""The validation engine: one set of rules for chat, the web form and staff.

Each rule has a code and a severity. An ``error`` blocks submission and is shown to the user
with what a right answer looks like; a ``warning`` lets the request go on and becomes a flag
for the agent. Every run records every rule, its outcome and the values it saw, and which
fields the system filled in itself (from the device registry, the warranty rule, or the
user's earlier requests), so the person who opens the ticket decides instead of retyping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..catalog import devices as registry
from ..catalog.models import Device, ProductModel
from ..catalog.warranty import WarrantyStatus, compute
from ..extensions import db
from ..tickets.models import (
    OPEN_STATES,
    DeviceReport,
    Level,
    Priority,
    RequestType,
    Ticket,
    ValidationRun,
)
from ..tickets.service import reopenable_for
from . import parsing

ERROR = "error"
WARNING = "warning"
INFO = "info"

# Every rule: code -> (severity, field, message in Chinese, message in English). Messages of
# errors say what a right answer looks like.
RULES: dict[str, tuple[str, str, str, str]] = {
    "serial.format": (
        ERROR,
        "serial",
        "序列号格式不对。序列号在设备底部或背面的标签上，由字母和数字组成，例如 AS2024C3H000001。",
        "That is not a serial number. It is on the label under or behind the device, letters "
        "and digits, e.g. AS2024C3H000001.",
    ),
    "serial.registered": (
        WARNING,
        "serial",
        "序列号不在设备档案中，将由客服人工核实。",
        "The serial number is not in the device registry; an agent will check it.",
    ),
    "device.reported": (
        WARNING,
        "serial",
        "该设备已被登记为失窃或注销，需人工核实。",
        "The device is reported stolen or revoked; an agent must check it.",
    ),
    "model.matches": (
        WARNING,
        "serial",
        "用户所说的型号与设备档案不一致。",
        "The model the user named differs from the registry's.",
    ),
    "fault.present": (
        ERROR,
        "fault",
        "请简单描述故障现象，至少几个字，例如“晚上画面发黑，红外灯不亮”。",
        'Please describe the fault in a few words, e.g. "the picture is black at night".',
    ),
    "contact_name.valid": (
        ERROR,
        "contact_name",
        "请填写联系人姓名（1-20 个字），例如“张先生”或“李红”。",
        'Please give a contact name (1-20 characters), e.g. "Mr Zhang".',
    ),
    "phone.mainland": (
        ERROR,
        "phone",
        "手机号不对。请填写 11 位中国大陆手机号，例如 139 1738 4526。",
        "That is not a mobile number. Please give an 11-digit mainland number, e.g. 139 1738 4526.",
    ),
    "phone.many_requests": (
        WARNING,
        "phone",
        "同一手机号近期提交了多个工单。",
        "This phone number is on several recent requests.",
    ),
    "address.plausible": (
        ERROR,
        "address",
        "地址不完整。请写到门牌号，例如“浙江省杭州市西湖区文三路 100 号 3 幢 501 室”。",
        "The address is incomplete. Please include the street and number, e.g. "
        '"Room 501, Building 3, 100 Wensan Road, Xihu, Hangzhou".',
    ),
    "purchase_date.format": (
        ERROR,
        "purchase_date",
        "没看懂购买日期。可以写 2025-03-01、2025年3月1日、去年三月 或 3/1。",
        "Could not read the purchase date. Write it like 2025-03-01 or 3/1.",
    ),
    "purchase_date.not_future": (
        ERROR,
        "purchase_date",
        "购买日期不能晚于今天，请核对后重新填写。",
        "The purchase date cannot be in the future.",
    ),
    "purchase_date.after_ship": (
        WARNING,
        "purchase_date",
        "购买日期早于设备出厂日期。",
        "The purchase date is before the device shipped.",
    ),
    "proof.required": (
        ERROR,
        "proof",
        "保修申请需要购买凭证：请上传发票、收据或订单截图的照片。",
        "A warranty claim needs proof of purchase: upload a photo of the invoice, receipt or "
        "order screenshot.",
    ),
    "warranty.covered": (
        WARNING,
        "request_type",
        "申请保修的设备已过保修期。",
        "Warranty claim on a device out of warranty.",
    ),
    "duplicate.open": (
        ERROR,
        "serial",
        "这台设备已有处理中的工单 {number}，无需重复提交；回复“查询工单”可查看进度。",
        "This device already has an open ticket {number}; no need to submit again.",
    ),
    "duplicate.other_customer": (
        WARNING,
        "serial",
        "该设备另有其他客户的处理中工单。",
        "Another customer has an open ticket for this device.",
    ),
}
# Warnings become these flags on the ticket.
FLAGS = {
    "serial.registered": "serial_unknown",
    "device.reported": "device_reported",
    "model.matches": "model_mismatch",
    "phone.many_requests": "phone_many_requests",
    "purchase_date.after_ship": "purchase_before_ship",
    "warranty.covered": "warranty_claim_out_of_warranty",
    "duplicate.other_customer": "device_has_open_ticket",
}
FLAG_LABELS: dict[str, tuple[str, str]] = {
    "serial_unknown": ("序列号不在档案中", "serial not in the registry"),
    "device_reported": ("设备登记为失窃/注销", "device reported stolen or revoked"),
    "model_mismatch": ("型号与档案不符", "model differs from the registry"),
    "phone_many_requests": ("同一手机号多次报修", "one phone on many recent requests"),
    "purchase_before_ship": ("购买日期早于出厂", "purchase date before shipping"),
    "warranty_claim_out_of_warranty": ("过保设备申请保修", "warranty claim out of warranty"),
    "device_has_open_ticket": ("设备另有处理中工单", "device has another open ticket"),
    "proof_missing": ("缺少购买凭证", "proof of purchase missing"),
}
# The fields the user is asked for, in order.
FORM_FIELDS = ("serial", "fault", "contact_name", "phone", "address", "purchase_date", "proof")
# Ticket fields the agent needs; the benchmark counts how many the system filled or checked.
TICKET_FIELDS = (
    "request_type",
    "serial",
    "model",
    "category",
    "ship_date",
    "purchase_date",
    "dealer",
    "installer",
    "warranty_status",
    "warranty_end",
    "warranty_basis",
    "fault",
    "fault_category",
    "contact_name",
    "phone",
    "address",
    "priority",
    "level",
    "duplicate_check",
    "risk_check",
)
_ADDRESS_PLACE_RE = re.compile(r"[省市区县镇乡村路街道巷弄号栋幢楼室单元小区大厦花园]")
_NAME_RE = re.compile(r"^[\u4e00-\u9fffA-Za-z·.\s]{1,20}$")
_FAULT_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("network", ("离线", "掉线", "连不上", "连接不上", "wifi", "无线", "网络", "配网", "不在线")),
    ("picture", ("黑屏", "画面", "模糊", "花屏", "没图像", "无图像", "夜视", "红外", "看不清")),
    ("power", ("不通电", "没电", "开不了机", "不开机", "电源", "重启", "死机", "发烫")),
    ("storage", ("硬盘", "录像", "存储", "回放", "sd卡", "内存卡", "tf卡")),
    ("lock", ("开锁", "指纹", "密码锁", "锁舌", "反锁", "门锁", "电池", "打不开门")),
    ("audio", ("声音", "对讲", "喇叭", "麦克风", "杂音", "门铃不响")),
    ("damage", ("摔", "进水", "裂", "碎", "烧", "破损", "冒烟")),
)
_URGENT_WORDS = ("冒烟", "起火", "着火", "漏电", "烧焦", "爆炸", "锁在门外", "进不了门", "打不开门")
_ONSITE_WORDS = ("上门", "安装", "拆装", "布线", "走线")


@dataclass
class Outcome:
    """What one rule found."""

    code: str
    passed: bool | None  # None: the rule did not apply (skipped)
    seen: dict[str, Any] = field(default_factory=dict)
    message_values: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """error, warning or info."""
        return RULES[self.code][0]

    @property
    def field(self) -> str:
        """The form field the rule is about."""
        return RULES[self.code][1]

    def message(self, lang: str = "zh") -> str:
        """The rule's message in ``lang``, filled in."""
        text = RULES[self.code][3 if lang == "en" else 2]
        return text.format(**self.message_values) if self.message_values else text

    @property
    def failed(self) -> bool:
        """The rule applied and was not met."""
        return self.passed is False

    def as_json(self) -> dict[str, Any]:
        """How the run is stored."""
        return {
            "code": self.code,
            "severity": self.severity,
            "outcome": "skip" if self.passed is None else ("pass" if self.passed else "fail"),
            "field": self.field,
            "message": self.message() if self.failed else "",
            "seen": _plain(self.seen),
        }


@dataclass
class Report:
    """One run of the engine over a request."""

    results: list[Outcome]
    values: dict[str, Any]
    sources: dict[str, str]
    device: Device | None = None
    warranty: WarrantyStatus | None = None
    duplicate: Ticket | None = None
    reopen: Ticket | None = None

    @property
    def errors(self) -> list[Outcome]:
        """Failed rules that block submission."""
        return [r for r in self.results if r.failed and r.severity == ERROR]

    @property
    def ok(self) -> bool:
        """No errors: the request may be submitted."""
        return not self.errors

    @property
    def flags(self) -> list[str]:
        """Flags for the agent from the failed warnings (and a missing proof waived in chat)."""
        out = [FLAGS[r.code] for r in self.results if r.failed and r.code in FLAGS]
        if self.values.get("proof_waived"):
            out.append("proof_missing")
        return list(dict.fromkeys(out))

    def error_for(self, name: str) -> Outcome | None:
        """The first error about one field."""
        return next((r for r in self.errors if r.field == name), None)

    @property
    def autofilled(self) -> list[str]:
        """Fields the system filled in (not typed by the user)."""
        return sorted(k for k, v in self.sources.items() if v != "user")


@dataclass
class FieldCheck:
    """One answer checked on its own: the value to keep, or the error to show."""

    value: Any
    error: Outcome | None
    fills: dict[str, Any] = field(default_factory=dict)  # what the answer let us fill in
    said_model: str | None = None


# --- single fields (the chat asks one at a time) -----------------------------------------------


def model_codes() -> list[str]:
    """Every model code in the catalogue."""
    return list(db.session.scalars(select(ProductModel.code)))


def check_serial(raw: str) -> FieldCheck:
    """A typed serial: normalised, format-checked and looked up in the registry."""
    serial, said_model = parsing.serial_candidates(raw, model_codes())
    seen = {"typed": raw[:80], "normalised": serial}
    if not registry.SERIAL_RE.match(serial):
        return FieldCheck(None, Outcome("serial.format", False, seen))
    device = registry.by_serial(serial)
    fills = autofill(device) if device is not None else {}
    return FieldCheck(serial, None, fills, said_model)


def check_fault(raw: str) -> FieldCheck:
    """A fault description: a few real characters, at most 1000."""
    text = " ".join(parsing.halfwidth(raw).split())[:1000]
    meaningful = re.sub(r"[\W_]", "", text)
    if len(meaningful) < 3 or meaningful.isdigit():
        return FieldCheck(None, Outcome("fault.present", False, {"typed": raw[:80]}))
    return FieldCheck(text, None, {"fault_category": fault_category(text)})


def check_name(raw: str) -> FieldCheck:
    """A contact name: letters or Chinese characters, 1-20 of them."""
    text = " ".join(parsing.halfwidth(raw).split())
    for prefix in ("我叫", "我是", "姓名", "联系人", "名字"):
        if text.startswith(prefix):
            text = text[len(prefix) :].lstrip(":：是 ")
    if not _NAME_RE.match(text) or not text.strip():
        return FieldCheck(None, Outcome("contact_name.valid", False, {"typed": raw[:40]}))
    return FieldCheck(text.strip(), None)


def check_phone(raw: str) -> FieldCheck:
    """A mainland mobile number (full-width digits, spaces, dashes and +86 accepted)."""
    found = parsing.phone_in_text(raw)
    phone = parsing.normalise_phone(found or raw)
    seen = {"typed": raw[:40], "normalised": phone}
    if not parsing.is_plausible_mobile(phone):
        return FieldCheck(None, Outcome("phone.mainland", False, seen))
    return FieldCheck(phone, None)


def check_address(raw: str) -> FieldCheck:
    """A return address: long enough, with a place word and a number or building name."""
    text = " ".join(parsing.halfwidth(raw).split())[:300]
    plausible = (
        len(text) >= 8
        and bool(_ADDRESS_PLACE_RE.search(text))
        and bool(re.search(r"\d|[一二三四五六七八九十]+[号栋幢楼室]", text))
        and not text.replace(" ", "").isdigit()
    )
    if not plausible:
        return FieldCheck(None, Outcome("address.plausible", False, {"typed": raw[:80]}))
    return FieldCheck(text, None)


def check_purchase_date(raw: str, today: date) -> FieldCheck:
    """A purchase date in any common form; never in the future."""
    parsed = parsing.parse_date(raw, today)
    seen = {"typed": raw[:40], "parsed": parsed.isoformat() if parsed else None}
    if parsed is None:
        return FieldCheck(None, Outcome("purchase_date.format", False, seen))
    if parsed > today:
        return FieldCheck(None, Outcome("purchase_date.not_future", False, seen))
    return FieldCheck(parsed.isoformat(), None)


def check_field(name: str, raw: str, today: date) -> FieldCheck:
    """Check one answer with the same rule the full run uses."""
    if name == "serial":
        return check_serial(raw)
    if name == "fault":
        return check_fault(raw)
    if name == "contact_name":
        return check_name(raw)
    if name == "phone":
        return check_phone(raw)
    if name == "address":
        return check_address(raw)
    if name == "purchase_date":
        return check_purchase_date(raw, today)
    raise ValueError(f"no check for {name}")


def fault_category(text: str) -> str:
    """A coarse fault category from the description (for routing and reports)."""
    lowered = text.lower()
    for category, words in _FAULT_CATEGORIES:
        if any(w in lowered for w in words):
            return category
    return "other"


# --- what the system knows -------------------------------------------------------------------


def autofill(device: Device, today: date | None = None) -> dict[str, Any]:
    """What the registry and the warranty rule say about a device."""
    status = compute(device, today)
    return {
        "serial": device.serial,
        "model": device.model.code,
        "model_name": device.model.name,
        "category": device.model.series.category,
        "ship_date": _iso(device.ship_date),
        "registered_purchase_date": _iso(device.purchase_date),
        "installed_on": _iso(device.installed_on),
        "dealer": device.dealer or "",
        "installer": device.installer.company if device.installer else "",
        "warranty_status": "in"
        if status.in_warranty
        else ("unknown" if status.end is None else "out"),
        "warranty_end": _iso(status.end),
        "warranty_basis": status.basis,
    }


def needs_proof(request_type: str, device: Device | None) -> bool:
    """Policy: an in-warranty claim or exchange without a registered purchase date needs proof."""
    if request_type not in (RequestType.WARRANTY, RequestType.EXCHANGE):
        return False
    return device is None or device.purchase_date is None


def needs_purchase_date(device: Device | None, request_type: str = RequestType.REPAIR) -> bool:
    """Ask the purchase date only when the warranty rule needs it.

    Not when the registry has a purchase or installation date; for a repair, not when the ship
    date gives the rule a start either; for a warranty claim or exchange, the customer's own
    date (with its proof) is stronger than the ship date.
    """
    if device is None:
        return True
    if device.purchase_date is not None or device.installed_on is not None:
        return False
    if device.ship_date is None:
        return True
    return request_type in (RequestType.WARRANTY, RequestType.EXCHANGE)


def triage(values: dict[str, Any]) -> tuple[str, str]:
    """(priority, level) from what the request says."""
    fault = str(values.get("fault") or "")
    priority = Priority.NORMAL
    if any(w in fault for w in _URGENT_WORDS):
        priority = Priority.URGENT
    elif values.get("category") == "lock" and values.get("fault_category") == "lock":
        priority = Priority.HIGH
    level = Level.ONSITE if any(w in fault for w in _ONSITE_WORDS) else Level.L2
    return priority, level


# --- the full run ----------------------------------------------------------------------------


def run(
    values: dict[str, Any],
    sources: dict[str, str],
    *,
    openid: str | None,
    today: date,
    now: datetime,
) -> Report:
    """Every rule over a complete request; the values come back completed from the registry."""
    values = dict(values)
    sources = dict(sources)
    request_type = values.get("request_type") or RequestType.REPAIR
    results: list[Outcome] = []

    serial_check = check_serial(str(values.get("serial") or ""))
    results.append(
        Outcome("serial.format", serial_check.error is None, {"serial": values.get("serial")})
    )
    device: Device | None = None
    if serial_check.error is None:
        values["serial"] = serial_check.value
        device = registry.by_serial(serial_check.value)
        results.append(
            Outcome("serial.registered", device is not None, {"serial": serial_check.value})
        )
        if device is not None:
            for key, value in autofill(device, today).items():
                if key not in values or sources.get(key) != "user":
                    values[key] = value
                    if key != "serial":
                        sources.setdefault(key, "registry")
            report = db.session.get(DeviceReport, device.id)
            results.append(
                Outcome(
                    "device.reported", report is None, {"report": report.kind if report else None}
                )
            )
            said = values.get("model_said") or serial_check.said_model
            results.append(
                Outcome(
                    "model.matches",
                    None if not said else said == device.model.code,
                    {"said": said, "registry": device.model.code},
                )
            )
        else:
            results.append(Outcome("device.reported", None))
            results.append(Outcome("model.matches", None))
    else:
        for code in ("serial.registered", "device.reported", "model.matches"):
            results.append(Outcome(code, None))

    for name, code in (
        ("fault", "fault.present"),
        ("contact_name", "contact_name.valid"),
        ("phone", "phone.mainland"),
        ("address", "address.plausible"),
    ):
        check = check_field(name, str(values.get(name) or ""), today)
        results.append(Outcome(code, check.error is None, {name: _short(values.get(name))}))
        if check.error is None:
            values[name] = check.value
            for key, fill in check.fills.items():
                values[key] = fill
                sources.setdefault(key, "rule")

    phone = values.get("phone") if parsing.is_plausible_mobile(str(values.get("phone"))) else None
    results.append(_many_requests(phone, now))

    _purchase_rules(values, sources, device, today, results)

    proof_needed = needs_proof(request_type, device)
    has_proof = bool(values.get("proof_sha256")) or bool(values.get("proof_waived"))
    results.append(
        Outcome(
            "proof.required",
            None if not proof_needed else has_proof,
            {"needed": proof_needed, "proof": values.get("proof_sha256")},
        )
    )

    status = compute(device, today) if device is not None else None
    claim = request_type in (RequestType.WARRANTY, RequestType.EXCHANGE)
    results.append(
        Outcome(
            "warranty.covered",
            None if not claim or status is None or status.end is None else status.in_warranty,
            {"request_type": request_type, "warranty_end": _iso(status.end) if status else None},
        )
    )

    duplicate, other = _open_duplicate(values.get("serial"), openid, phone)
    results.append(
        Outcome(
            "duplicate.open",
            None if serial_check.error else duplicate is None,
            {"ticket": duplicate.number if duplicate else None},
            {"number": duplicate.number} if duplicate else {},
        )
    )
    results.append(
        Outcome(
            "duplicate.other_customer",
            None if serial_check.error else not other,
            {"open_elsewhere": other},
        )
    )
    reopen = None
    if duplicate is None and serial_check.error is None:
        reopen = reopenable_for(values["serial"], openid, now)

    priority, level = triage(values)
    values.setdefault("priority", priority)
    values.setdefault("level", level)
    for key in ("priority", "level"):
        sources.setdefault(key, "rule")
    sources.setdefault("duplicate_check", "rule")
    sources.setdefault("risk_check", "rule")
    values.setdefault("request_type", request_type)
    return Report(results, values, sources, device, status, duplicate, reopen)


def _purchase_rules(
    values: dict[str, Any],
    sources: dict[str, str],
    device: Device | None,
    today: date,
    results: list[Outcome],
) -> None:
    raw = values.get("purchase_date")
    if not raw and device is not None and device.purchase_date is not None:
        values["purchase_date"] = device.purchase_date.isoformat()
        sources["purchase_date"] = "registry"
        raw = values["purchase_date"]
    if not raw:
        results.append(Outcome("purchase_date.format", None))
        results.append(Outcome("purchase_date.not_future", None))
        results.append(Outcome("purchase_date.after_ship", None))
        return
    check = check_purchase_date(str(raw), today)
    parsed = parsing.parse_date(str(raw), today)
    results.append(Outcome("purchase_date.format", parsed is not None, {"typed": raw}))
    results.append(
        Outcome(
            "purchase_date.not_future",
            None if parsed is None else parsed <= today,
            {"parsed": _iso(parsed)},
        )
    )
    if check.error is None:
        values["purchase_date"] = check.value
    ship = device.ship_date if device is not None else None
    results.append(
        Outcome(
            "purchase_date.after_ship",
            None if parsed is None or ship is None else parsed >= ship,
            {"purchase_date": _iso(parsed), "ship_date": _iso(ship)},
        )
    )


def _many_requests(phone: str | None, now: datetime) -> Outcome:
    if not phone:
        return Outcome("phone.many_requests", None)
    cfg = current_app.config
    days = int(cfg.get("RISK_PHONE_DAYS", 30))
    limit = int(cfg.get("RISK_PHONE_REQUESTS", 3))
    count = (
        db.session.scalar(
            select(func.count(Ticket.id)).where(
                Ticket.phone == phone, Ticket.created_at >= now - timedelta(days=days)
            )
        )
        or 0
    )
    return Outcome(
        "phone.many_requests",
        count < limit,
        {"recent_requests": count, "days": days, "limit": limit},
    )


def _open_duplicate(
    serial: str | None, openid: str | None, phone: str | None
) -> tuple[Ticket | None, bool]:
    """The same customer's open ticket for this device, and whether someone else has one."""
    if not serial:
        return None, False
    rows = db.session.scalars(
        select(Ticket).where(Ticket.serial == serial, Ticket.state.in_(OPEN_STATES))
    ).all()
    own = next(
        (t for t in rows if (openid and t.openid == openid) or (phone and t.phone == phone)), None
    )
    return own, own is None and bool(rows)


def store(ticket: Ticket, report: Report, channel: str, actor: str = "bot") -> ValidationRun:
    """Keep the run with the ticket: every rule, outcome and value, and what was auto-filled."""
    run_row = ValidationRun(
        ticket=ticket,
        channel=channel,
        actor=actor,
        ok=report.ok,
        results=[r.as_json() for r in report.results],
        autofilled=report.autofilled,
        values=_plain(report.values),
    )
    db.session.add(run_row)
    return run_row


def purchase_date(report: Report) -> date | None:
    """The checked purchase date (kept as ISO text, as it is stored with the run) as a date."""
    raw = report.values.get("purchase_date")
    return date.fromisoformat(raw) if raw else None


def ticket_fields(report: Report) -> dict[str, Any]:
    """The ticket's field table: each field's value and where it came from."""
    out: dict[str, Any] = {}
    for name in TICKET_FIELDS:
        value = report.values.get(name)
        if name == "duplicate_check":
            value = "ok" if report.duplicate is None else report.duplicate.number
        if name == "risk_check":
            value = report.flags
        out[name] = {"value": _plain_value(value), "source": report.sources.get(name, "user")}
    return out


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _short(value: Any) -> Any:
    return value[:200] if isinstance(value, str) else value


def _plain_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _plain_value(v) for k, v in values.items()}
