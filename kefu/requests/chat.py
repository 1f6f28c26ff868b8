"""The request form in chat: one field at a time, each answer checked at once.

The form lives in the ``request_forms`` table, never in memory, so a restart or another
worker mid-form loses nothing; the row is locked while a message is handled, so two
deliveries for one user never step over each other. The dialog hands a message here first
(:func:`handle_text`); ``None`` means "not for the form" and the dialog answers it as usual
(an FAQ question in the middle of the form), then adds :func:`pending_note` so the user
knows how to come back. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from .. import jobs, outbox, timeutil
from ..catalog import devices as registry
from ..catalog.models import Device
from ..extensions import db
from ..models import Conversation
from ..tickets import service
from ..tickets.models import RequestForm, RequestType, Ticket
from . import labels, parsing, validation
from .submit import submit

TYPE_LABELS = {
    RequestType.REPAIR: "报修",
    RequestType.WARRANTY: "保修申请",
    RequestType.EXCHANGE: "换货申请",
}
FIELD_LABELS = {
    "serial": "设备序列号",
    "fault": "故障描述",
    "contact_name": "联系人",
    "phone": "手机号",
    "address": "寄回地址",
    "purchase_date": "购买日期",
    "proof": "购买凭证",
}
PROMPTS = {
    "serial": "请发送设备序列号（在设备底部或背面的标签上），也可以直接拍一张标签照片发给我。",
    "device_confirm": "请回复“是”确认这台设备，或直接发送正确的序列号。",
    "fault": "请简单描述一下故障现象，例如“晚上画面发黑，红外灯不亮”。",
    "contact_name": "请问联系人怎么称呼？",
    "phone": "请留一个联系手机号。",
    "address": "请提供设备寄回地址（写到门牌号）。",
    "purchase_date": "设备是什么时候买的？例如 2025-03-01、去年三月 或 3/1。",
    "proof": (
        "保修申请需要购买凭证：请拍一张发票、收据或订单截图的照片发给我。"
        "没有凭证请回复“没有”，将按付费维修评估。"
    ),
}
TEXT = {
    "start": (
        "好的，为您登记{kind}，我会逐项询问。随时可回复“取消”放弃，或说“改一下电话”修改已填内容。"
    ),
    "known_device": "设备：{model} {name}（序列号 {serial}），{warranty}。",
    "already_open": "您有一份{kind}正在填写。",
    "cancelled": "已取消本次{kind}，已填写的信息已删除。需要时回复“报修”重新开始。",
    "photo_wait": "收到照片，正在识别，请稍候……",
    "photo_wait_proof": "收到凭证照片，正在检查，请稍候……",
    "label_found": (
        "识别到：{model} {name}，序列号 {serial}，是这台吗？回复“是”确认，或直接发送正确的序列号。"
    ),
    "label_unknown": (
        "识别到序列号 {serial}，但设备档案中没有这台设备。"
        "是这个序列号吗？回复“是”继续，或发送正确的序列号。"
    ),
    "label_none": (
        "没能从照片中识别出二维码或条码。请对准设备标签再拍一张"
        "（光线充足、不要反光），或直接输入序列号。"
    ),
    "label_failed": "照片下载失败，请重新发送，或直接输入序列号。",
    "proof_ok": "购买凭证已收到。",
    "proof_bad": "凭证照片无法使用：{reason}请重新拍一张发给我，或回复“没有”。",
    "summary_head": "请核对{kind}信息：",
    "summary_tail": "信息无误请回复“确认”提交；需要修改请说“改一下电话”“地址填错了”等。",
    "confirm_what": "请回复“确认”提交，或告诉我要修改哪一项（例如“改一下地址”）。",
    "correct_which": "想修改哪一项？可以说：序列号、故障描述、联系人、手机号、寄回地址或购买日期。",
    "correct_ask": "好的，请重新提供{label}：",
    "created": "已提交，工单号 {number}。\n专员将在 {due} 前与您联系。\n查看进度：{url}",
    "reopened": "您之前的工单 {number} 已重新打开，专员会继续处理，无需新建工单。\n查看进度：{url}",
    "duplicate": "这台设备已有处理中的工单 {number}（{state}），无需重复提交。\n查看进度：{url}",
    "duplicate_elsewhere": (
        "这台设备已有以该手机号提交的处理中工单，无需重复提交。"
        "进度会通过提交时的渠道通知；如有疑问请回复“人工”。"
    ),
    "pending": "——\n您的{kind}还没填完：{prompt}\n（回复“继续”接着填写，回复“取消”放弃）",
    "reminder": "您的{kind}还差：{missing}。回复“继续”接着填写；{hours} 小时内未完成将自动取消。",
    "expired": "您的{kind}因长时间未完成已自动取消，已填写的信息已删除。需要时回复“报修”重新开始。",
    "no_tickets": "您名下还没有工单。需要报修请回复“报修”。",
    "ticket_unknown": (
        "没有查到您名下的这个工单号。工单号可在提交后的通知中找到；其他问题请回复“人工”。"
    ),
    "tickets_head": "您的工单：",
}

# Starting a request: explicit phrases only, so "保修期多久" stays an FAQ question.
_START_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"申请保修|要保修|保修申请|办理保修|免费维修"), RequestType.WARRANTY),
    (re.compile(r"换货|换一台|换个新的|换新机"), RequestType.EXCHANGE),
    (
        re.compile(
            r"^(我要|我想|想|要|申请|需要|帮我|请帮我|怎么|如何)?(报修|维修|返修|寄修|送修)(一下)?$"
            r"|我要报修|我想报修|申请维修|申请报修|坏了要修|坏了.{0,4}修|要修一下|需要维修|报修"
        ),
        RequestType.REPAIR,
    ),
)
# Always about the user's tickets; the weaker phrases only when the user has a ticket (else
# "维修进度在哪看" is a question for the knowledge base).
_QUERY_RE = re.compile(r"查询工单|我的工单|查工单|查一下工单|工单查询")
_WEAK_QUERY_RE = re.compile(r"工单进度|报修进度|维修进度|到哪了|工单状态|我的报修|进度怎么样")
# A request starts on a short message that asks for it ("我要报修", "门锁坏了要修"); a longer
# one, or a question, is for the dialog ("报修等了一个星期没人理 到底还修不修", "能保修吗").
MAX_START_CHARS = 12
_EXACT_START_RE = re.compile(
    r"^(我要|我想|想|要|申请|需要|帮我|请帮我|怎么|如何)?(报修|维修|返修|寄修|送修)(一下)?$"
)
_CANCEL_RE = re.compile(
    r"^(取消|取消报修|取消申请|不修了|不报修了|算了|不要了|退出|不用了)[。.!！]*$"
)
_CONTINUE_RE = re.compile(r"^(继续|继续报修|继续填写|接着填|接着来|回到报修)[。.!！]*$")
_YES_RE = re.compile(
    r"^(是|是的|对|对的|确认|确认提交|提交|没问题|好|好的|ok|嗯|正确|是这台|没错|可以)[。.!！~]*$",
    re.IGNORECASE,
)
_NO_RE = re.compile(r"^(不是|不对|否|错了|不是这台|没有)[。.!！]*$")
_NO_PROOF_RE = re.compile(r"^(没有|没|无|找不到|丢了|没有凭证|跳过)[。.!！]*$")
_QUESTION_RE = re.compile(
    r"[?？]|吗$|么$|呢$|不$|怎么|如何|为什么|为啥|能不能|可不可以|可以|多久|哪里|哪儿|什么|"
    r"是不是|算不算|还能|管不管"
)
_CORRECT_RE = re.compile(r"改|修改|更正|更改|换个|换一下|填错|写错|弄错|错了|不对")
_FIELD_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("phone", ("电话", "手机", "号码", "联系方式")),
    ("address", ("地址", "寄回", "收货")),
    ("contact_name", ("姓名", "名字", "联系人", "称呼")),
    ("purchase_date", ("购买日期", "日期", "购买时间", "什么时候买")),
    ("serial", ("序列号", "设备", "SN", "sn", "机器")),
    ("fault", ("故障", "描述", "问题")),
)
_NOTE_KEY = "kefu.request_form_note"
_VALUE_AFTER_RE = re.compile(r"(?:改成|改为|换成|应该是|是|为|:|：)\s*(.+)$")


def idle_limit() -> timedelta:
    """How long an untouched form lives (``REQUEST_FORM_IDLE_HOURS``, default 24)."""
    return timedelta(hours=float(current_app.config.get("REQUEST_FORM_IDLE_HOURS", 24)))


def remind_after() -> timedelta:
    """When an untouched form gets its one reminder (``REQUEST_FORM_REMIND_HOURS``)."""
    return timedelta(hours=float(current_app.config.get("REQUEST_FORM_REMIND_HOURS", 2)))


def start_intent(message: str) -> str | None:
    """The request type a message asks to start, or None."""
    text = re.sub(r"[\s,，。.!！~、]", "", parsing.halfwidth(message))
    if _EXACT_START_RE.match(text):
        return RequestType.REPAIR
    if len(text) > MAX_START_CHARS or _QUESTION_RE.search(text):
        return None
    for pattern, kind in _START_PATTERNS:
        if pattern.search(text):
            return kind
    return None


def is_query(openid: str, message: str) -> bool:
    """Whether the user asks about their tickets (or names a ticket number)."""
    from ..tickets import numbers

    if _QUERY_RE.search(message) or numbers.looks_like_number(message):
        return True
    if _WEAK_QUERY_RE.search(message):
        has_ticket = select(Ticket.id).where(Ticket.openid == openid).limit(1)
        return db.session.scalar(has_ticket) is not None
    return False


# --- entry points ----------------------------------------------------------------------------


def handle_text(openid: str, message: str, now: datetime | None = None) -> str | None:
    """A text message: the form's reply, or None when the dialog should answer it."""
    now = now or datetime.now(UTC)
    form = _load(openid, now)
    if is_query(openid, message):
        return answer_query(openid, message)
    if form is None:
        kind = start_intent(message)
        if kind is None:
            return None
        return start(openid, now, request_type=kind)
    form.turns += 1
    form.updated_at = now
    form.reminded_at = None
    # A text while a photo is being read: the user moved on, a late result is dropped.
    form.pending_media = None
    text = parsing.halfwidth(message).strip()
    if _CANCEL_RE.match(text):
        return cancel(form)
    if _CONTINUE_RE.match(text):
        return _ask(form)
    kind = start_intent(text)
    if kind is not None and not form.step.startswith("confirm"):
        return TEXT["already_open"].format(kind=TYPE_LABELS[form.request_type]) + _ask(form)
    corrected = _correction(form, text, now)
    if corrected is not None:
        return corrected
    reply = _answer(form, text, now)
    if reply is None:
        # Not an answer: the dialog answers it (an FAQ question), then adds the way back.
        db.session.info[_NOTE_KEY] = openid
    return reply


def start(
    openid: str,
    now: datetime | None = None,
    *,
    request_type: str = RequestType.REPAIR,
    device: Device | None = None,
    via: str = "intent",
) -> str:
    """Open a form (or resume the open one); a known device skips the serial question."""
    now = now or datetime.now(UTC)
    form = _load(openid, now)
    if form is not None:
        form.turns += 1
        form.updated_at = now
        if device is not None and "serial" not in form.values:
            _take_device(form, device, via)
        return TEXT["already_open"].format(kind=TYPE_LABELS[form.request_type]) + _ask(form)
    form = RequestForm(
        openid=openid,
        request_type=request_type,
        step="",
        values={"request_type": request_type},
        sources={"request_type": "menu" if via == "menu" else "intent"},
        correcting=False,
        turns=1,
        started_at=now,
        updated_at=now,
    )
    db.session.add(form)
    _mark_open(openid, True)
    device = device or _current_device(openid)
    lines = [TEXT["start"].format(kind=TYPE_LABELS[request_type])]
    if device is not None:
        _take_device(form, device, via if via != "intent" else "scan")
        lines.append(_device_line(device))
    _prefill_contact(form, openid)
    lines.append(_ask(form))
    return "\n".join(lines)


def handle_image(openid: str, media_id: str, now: datetime | None = None) -> str | None:
    """A photo: the label (device step) or the proof of purchase, read by a background job."""
    now = now or datetime.now(UTC)
    form = _load(openid, now)
    if form is None or not media_id:
        return None
    form.turns += 1
    form.updated_at = now
    form.pending_media = media_id[:128]
    if form.step == "proof":
        jobs.after_commit(read_proof_photo, openid, media_id)
        return TEXT["photo_wait_proof"]
    if form.step in {"serial", "device_confirm"} or "serial" not in form.values:
        jobs.after_commit(read_label_photo, openid, media_id)
        return TEXT["photo_wait"]
    form.pending_media = None
    return "这一步不需要照片。" + _ask(form)


def handle_scan(openid: str, scanned: str, now: datetime | None = None) -> str | None:
    """A ``scancode_waitmsg`` result while a form waits for the device: fill it in."""
    now = now or datetime.now(UTC)
    form = _load(openid, now)
    if form is None or "serial" in form.values:
        return None
    reading = labels.identify([scanned], current_app.config["PUBLIC_BASE_URL"])
    if reading.device is None:
        return None
    form.turns += 1
    form.updated_at = now
    _take_device(form, reading.device, "scan")
    return _device_line(reading.device) + "\n" + _ask(form)


def pending_note_once(openid: str) -> str | None:
    """The way back to the form, once, after the dialog answered a question in its middle."""
    if db.session.info.get(_NOTE_KEY) != openid:
        return None
    db.session.info.pop(_NOTE_KEY, None)
    return pending_note(openid)


def pending_note(openid: str) -> str | None:
    """After an FAQ answer in the middle of a form: how to come back to it."""
    form = db.session.get(RequestForm, openid)
    if form is None or not form.step:
        return None
    return TEXT["pending"].format(kind=TYPE_LABELS[form.request_type], prompt=_prompt(form))


def cancel(form: RequestForm) -> str:
    """Drop the form and everything typed into it."""
    kind = TYPE_LABELS[form.request_type]
    _drop(form)
    return TEXT["cancelled"].format(kind=kind)


def forget(openid: str) -> None:
    """The user unfollowed: their open form goes, with every personal detail in it."""
    # The conversation row (and its form_open flag) is deleted with the rest of the dialog.
    db.session.execute(delete(RequestForm).where(RequestForm.openid == openid))


# --- ticket queries --------------------------------------------------------------------------


def answer_query(openid: str, message: str) -> str:
    """The user's own tickets; a number that is not theirs gets the same answer as no ticket."""
    from ..tickets import numbers

    if numbers.looks_like_number(message):
        ticket = service.by_number(message)
        if ticket is None or ticket.openid != openid:
            return TEXT["ticket_unknown"]
        return _ticket_line(ticket)
    own = service.for_openid(openid)
    if not own:
        return TEXT["no_tickets"]
    return "\n\n".join([TEXT["tickets_head"], *(_ticket_line(t) for t in own)])


def _ticket_line(ticket: Ticket) -> str:
    label = service.STATE_LABELS[ticket.state][0]
    model = ticket.model_code or ""
    updated = ticket.updated_at.astimezone(timeutil.local_zone())
    line = f"{ticket.number} {model}：{label}（更新于 {updated:%m-%d %H:%M}）"
    if ticket.is_open and ticket.resolution_due is not None:
        due = ticket.resolution_due.astimezone(timeutil.local_zone())
        line += f"\n预计 {due:%m月%d日} 前处理完毕"
    return f"{line}\n进度：{service.status_url(ticket)}"


# --- the form --------------------------------------------------------------------------------


def _load(openid: str, now: datetime) -> RequestForm | None:
    conv = db.session.get(Conversation, openid)  # already loaded by the dialog: no query
    if conv is not None and not conv.form_open:
        return None
    form = db.session.get(RequestForm, openid, with_for_update=True, populate_existing=True)
    if form is not None and now - form.updated_at > idle_limit():
        _drop(form)
        db.session.flush()
        return None
    if form is None and conv is not None:
        conv.form_open = False
    return form


def _mark_open(openid: str, value: bool) -> None:
    """Keep the conversation's flag in step with the form table."""
    conv = db.session.get(Conversation, openid)
    if conv is None:
        if not value:
            return
        conv = Conversation(openid=openid, failures=0)
        db.session.add(conv)
    conv.form_open = value


def _drop(form: RequestForm) -> None:
    _mark_open(form.openid, False)
    db.session.delete(form)


def _set(form: RequestForm, name: str, value: Any, source: str) -> None:
    form.values = {**form.values, name: value}
    form.sources = {**form.sources, name: source}


def _unset(form: RequestForm, name: str) -> None:
    form.values = {k: v for k, v in form.values.items() if k != name}
    form.sources = {k: v for k, v in form.sources.items() if k != name}


def _device(form: RequestForm) -> Device | None:
    serial = form.values.get("serial")
    return registry.by_serial(serial) if serial else None


def _take_device(form: RequestForm, device: Device, source: str) -> None:
    _set(form, "serial", device.serial, source)
    for key, value in validation.autofill(device, timeutil.today()).items():
        if key != "serial":
            _set(form, key, value, "registry")


def _device_line(device: Device) -> str:
    fills = validation.autofill(device, timeutil.today())
    if fills["warranty_status"] == "in":
        warranty = f"保修至 {fills['warranty_end']}"
    elif fills["warranty_status"] == "out":
        warranty = f"已于 {fills['warranty_end']} 过保"
    else:
        warranty = "保修期待核实"
    return TEXT["known_device"].format(
        model=device.model.code, name=device.model.name, serial=device.serial, warranty=warranty
    )


def _current_device(openid: str) -> Device | None:
    """The device the user last scanned, when the conversation keeps one."""
    conv = db.session.get(Conversation, openid)
    for attr in ("device_id", "current_device_id"):
        device_id = getattr(conv, attr, None) if conv is not None else None
        if device_id:
            return db.session.get(Device, device_id)
    return None


def _prefill_contact(form: RequestForm, openid: str) -> None:
    """Name, phone and address from the user's last ticket: confirmed in the summary."""
    last = db.session.scalar(
        select(Ticket)
        .where(Ticket.openid == openid, Ticket.phone != "")
        .order_by(Ticket.created_at.desc())
        .limit(1)
    )
    if last is None:
        return
    for name in ("contact_name", "phone", "address"):
        value = getattr(last, name)
        if value and name not in form.values:
            _set(form, name, value, "previous")


def _missing(form: RequestForm) -> list[str]:
    device = _device(form)
    wanted = ["serial", "fault", "contact_name", "phone", "address"]
    if validation.needs_purchase_date(device, form.request_type):
        wanted.append("purchase_date")
    if validation.needs_proof(form.request_type, device):
        wanted.append("proof")
    return [
        name
        for name in wanted
        if name not in form.values
        and not (
            name == "proof" and (form.values.get("proof_sha256") or form.values.get("proof_waived"))
        )
    ]


def _next_step(form: RequestForm) -> str:
    missing = _missing(form)
    return missing[0] if missing else "confirm"


def _prompt(form: RequestForm) -> str:
    if form.step == "confirm":
        return TEXT["confirm_what"]
    if form.step == "device_confirm":
        return PROMPTS["device_confirm"]
    return PROMPTS.get(form.step, PROMPTS["serial"])


def _ask(form: RequestForm) -> str:
    if form.pending_media:
        return TEXT["photo_wait"]
    if form.step == "device_confirm":
        return PROMPTS["device_confirm"]
    form.step = _next_step(form)
    if form.step == "confirm":
        return _summary(form)
    return PROMPTS[form.step]


def _summary(form: RequestForm) -> str:
    values = form.values
    lines = [TEXT["summary_head"].format(kind=TYPE_LABELS[form.request_type])]
    device = _device(form)
    if device is not None:
        lines.append(f"设备：{device.model.code} {device.model.name}（{device.serial}）")
    else:
        lines.append(f"设备序列号：{values.get('serial')}（档案中未找到，将人工核实）")
    lines.append(f"故障：{values.get('fault', '')}")
    lines.append(f"联系人：{values.get('contact_name', '')}")
    lines.append(f"手机号：{values.get('phone', '')}")
    lines.append(f"寄回地址：{values.get('address', '')}")
    purchase = values.get("purchase_date") or values.get("registered_purchase_date")
    if purchase:
        lines.append(f"购买日期：{purchase}")
    if values.get("proof_sha256"):
        lines.append("购买凭证：已上传")
    elif values.get("proof_waived"):
        lines.append("购买凭证：无（按付费维修评估）")
    lines.append(TEXT["summary_tail"])
    return "\n".join(lines)


def _correction(form: RequestForm, text: str, now: datetime) -> str | None:
    """ "改一下电话", "地址填错了", "电话改成 139…": go back to that field."""
    if not _CORRECT_RE.search(text):
        return None
    target = next((name for name, words in _FIELD_WORDS if any(w in text for w in words)), None)
    if target is None:
        if form.step == "confirm" or _NO_RE.match(text):
            return TEXT["correct_which"]
        return None
    # "电话改成13912345678": the new value in the same message.
    after = _VALUE_AFTER_RE.search(text)
    if after and target != "serial":
        check = validation.check_field(target, after.group(1), timeutil.today(now))
        if check.error is None:
            _set(form, target, check.value, "user")
            for key, fill in check.fills.items():
                _set(form, key, fill, "rule")
            form.step = _next_step(form)
            return _ask(form)
    if target == "serial":
        for key in list(form.values):
            if form.sources.get(key) in {"registry"} or key in {"serial", "model_said"}:
                _unset(form, key)
    else:
        _unset(form, target)
    form.correcting = True
    form.step = target
    return TEXT["correct_ask"].format(label=FIELD_LABELS[target]) + PROMPTS[target]


def _answer(form: RequestForm, text: str, now: datetime) -> str | None:
    step = form.step or _next_step(form)
    today = timeutil.today(now)
    if step == "confirm":
        if _YES_RE.match(text):
            return _submit(form, now)
        if _NO_RE.match(text):
            return TEXT["correct_which"]
        if _QUESTION_RE.search(text):
            return None
        return TEXT["confirm_what"]
    if step == "device_confirm":
        candidate = form.values.get("candidate_serial")
        if _YES_RE.match(text) and candidate:
            _unset(form, "candidate_serial")
            device = registry.by_serial(candidate)
            if device is not None:
                _take_device(form, device, "photo")
            else:
                _set(form, "serial", candidate, "photo")
            form.step = ""
            return _ask(form)
        if _NO_RE.match(text):
            _unset(form, "candidate_serial")
            form.step = "serial"
            return PROMPTS["serial"]
        step = "serial"
    if step == "proof":
        if _NO_PROOF_RE.match(text):
            _set(form, "proof_waived", True, "user")
            form.request_type = RequestType.REPAIR
            _set(form, "request_type", RequestType.REPAIR, "rule")
            return _ask(form)
        if _QUESTION_RE.search(text):
            return None
        return PROMPTS["proof"]
    check = validation.check_field(step, text, today)
    if check.error is not None:
        if step != "fault" and _QUESTION_RE.search(text):
            return None  # an FAQ question in the middle: the dialog answers, then reminds
        # A phone number given while the name is asked: keep it, ask the name again.
        if step == "contact_name":
            phone = parsing.phone_in_text(text)
            if phone and parsing.is_plausible_mobile(phone):
                _set(form, "phone", phone, "user")
        return check.error.message()
    if step == "serial":
        _unset(form, "candidate_serial")
        device = registry.by_serial(check.value)
        if device is not None:
            _take_device(form, device, "user")
        else:
            _set(form, "serial", check.value, "user")
        if check.said_model:
            _set(form, "model_said", check.said_model, "user")
        prefix = (
            _device_line(device) + "\n"
            if device is not None
            else ("设备档案中没有这个序列号，报修可以继续，客服会人工核实。\n")
        )
        form.step = ""
        return prefix + _ask(form)
    _set(form, step, check.value, "user")
    for key, fill in check.fills.items():
        _set(form, key, fill, "rule")
    # A name and a phone number in one message ("张三 13912345678"): take both.
    if step == "contact_name":
        phone = parsing.phone_in_text(text)
        if phone and parsing.is_plausible_mobile(phone) and "phone" not in form.values:
            _set(form, "phone", phone, "user")
    form.step = ""
    return _ask(form)


def _submit(form: RequestForm, now: datetime) -> str:
    values = {**form.values, "chat_turns": form.turns}
    values.pop("candidate_serial", None)
    report = validation.run(
        values, dict(form.sources), openid=form.openid, today=timeutil.today(now), now=now
    )
    if report.duplicate is not None:
        ticket = report.duplicate
        _drop(form)
        if ticket.openid != form.openid:
            # Matched by the phone number alone: the number and link are the other chat's.
            return TEXT["duplicate_elsewhere"]
        return TEXT["duplicate"].format(
            number=ticket.number,
            state=service.STATE_LABELS[ticket.state][0],
            url=service.status_url(ticket),
        )
    if not report.ok:
        error = report.errors[0]
        form.step = error.field if error.field in PROMPTS else ""
        if form.step:
            _unset(form, form.step)
        return error.message() + "\n" + _ask(form)
    ticket, outcome = submit(report, channel="chat", openid=form.openid, now=now)
    _drop(form)
    if outcome == "reopened":
        return TEXT["reopened"].format(number=ticket.number, url=service.status_url(ticket))
    due = (
        ticket.first_response_due.astimezone(timeutil.local_zone())
        if (ticket.first_response_due)
        else now
    )
    return TEXT["created"].format(
        number=ticket.number, due=f"{due:%m月%d日 %H:%M}", url=service.status_url(ticket)
    )


# --- background jobs -------------------------------------------------------------------------


def _download(media_id: str) -> bytes:
    from ..integrations import api_client

    return api_client().download_media(media_id)


def read_label_photo(openid: str, media_id: str) -> None:
    """Job: fetch a label photo from WeChat, decode it, and tell the user what was found."""
    form = db.session.get(RequestForm, openid, with_for_update=True)
    if form is None or form.pending_media != media_id:
        return
    from ..wechat import WeChatApiError

    try:
        data = _download(media_id)
    except WeChatApiError:
        db.session.rollback()
        raise  # the queue retries the download with backoff
    try:
        texts = labels.decode(data)
    except (OSError, ValueError, SyntaxError, Warning):  # not an image, truncated, a bomb
        texts = []
    reading = labels.identify(texts, current_app.config["PUBLIC_BASE_URL"])
    form.pending_media = None
    if reading.device is not None:
        device = reading.device
        _set(form, "candidate_serial", device.serial, "photo")
        form.step = "device_confirm"
        reply = TEXT["label_found"].format(
            model=device.model.code, name=device.model.name, serial=device.serial
        )
    elif reading.serial:
        _set(form, "candidate_serial", reading.serial, "photo")
        form.step = "device_confirm"
        reply = TEXT["label_unknown"].format(serial=reading.serial)
    else:
        form.step = "serial"
        reply = TEXT["label_none"]
    outbox.enqueue_text(openid, reply, purpose="label_result")
    db.session.commit()


def read_proof_photo(openid: str, media_id: str) -> None:
    """Job: fetch a proof-of-purchase photo, check and store it, and go on with the form."""
    from . import photos

    form = db.session.get(RequestForm, openid, with_for_update=True)
    if form is None or form.pending_media != media_id:
        return
    data = _download(media_id)
    form.pending_media = None
    try:
        stored = photos.store(data)
    except photos.PhotoError as exc:
        reply = TEXT["proof_bad"].format(reason=exc.zh)
    else:
        _set(form, "proof_sha256", stored.sha256, "user")
        form.step = ""
        reply = TEXT["proof_ok"] + "\n" + _ask(form)
    outbox.enqueue_text(openid, reply, purpose="proof_result")
    db.session.commit()


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """Job: remind users of forms left idle, and drop forms idle too long; (reminded, expired)."""
    now = now or datetime.now(UTC)
    reminded = expired = 0
    limit = idle_limit()
    for form in db.session.scalars(select(RequestForm)).all():
        idle = now - form.updated_at
        kind = TYPE_LABELS[form.request_type]
        if idle > limit:
            if outbox.window_open(form.openid, now):
                outbox.enqueue_text(
                    form.openid, TEXT["expired"].format(kind=kind), purpose="form_expired"
                )
            _drop(form)
            expired += 1
        elif idle > remind_after() and form.reminded_at is None and not form.pending_media:
            missing = [FIELD_LABELS[m] for m in _missing(form)] or ["确认提交"]
            hours = max(1, round((limit - idle).total_seconds() / 3600))
            if outbox.window_open(form.openid, now):
                outbox.enqueue_text(
                    form.openid,
                    TEXT["reminder"].format(kind=kind, missing="、".join(missing), hours=hours),
                    purpose="form_reminder",
                )
            form.reminded_at = now
            reminded += 1
    db.session.commit()
    return reminded, expired
