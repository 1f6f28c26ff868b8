"""Demo requests and tickets: a handful of believable cases in every state, filed through the
same chat form and validation engine as real ones, then moved along by a demo agent.

Idempotent: each case belongs to a fixed demo user (``demo_case_*``); a case whose user already
has a ticket is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ..catalog.models import Device, ProductModel, Series
from ..extensions import db
from ..models import ChatMessage
from . import service
from .models import Ticket, TicketState

AGENT = "staff:demo_agent"


@dataclass(frozen=True)
class Case:
    """One demo customer and what happens to their request."""

    key: str
    category: str  # which kind of demo device they own
    pick: int  # which of that kind
    request: str  # what they type to start
    fault: str
    name: str
    phone: str
    address: str
    steps: tuple[tuple[str, str], ...] = ()  # (state, note) moves by the demo agent
    serial: str | None = None  # typed instead of a registered device


CASES = (
    Case(
        "night",
        "camera",
        0,
        "我要报修",
        "晚上画面发黑，红外灯不亮，白天正常",
        "陈先生",
        "13957182046",
        "浙江省杭州市西湖区文三路 259 号昌地火炬大厦 1 号楼 1203 室",
    ),
    Case(
        "nvr",
        "nvr",
        0,
        "录像机坏了要修",
        "硬盘录像回放不了，提示硬盘异常，已经重启过两次",
        "刘女士",
        "13816254907",
        "上海市闵行区七莘路 1885 号 5 号楼 402 室",
        (("assigned", "已安排二线专员远程查看"),),
    ),
    Case(
        "doorbell",
        "doorbell",
        0,
        "报修",
        "门铃按了不响，App 也收不到来访提醒",
        "王建国",
        "18662517390",
        "江苏省苏州市工业园区星湖街 328 号 12 幢 601 室",
        (("assigned", ""), ("waiting_customer", "请拍一张门铃安装位置和接线的照片发给我们")),
    ),
    Case(
        "lock",
        "lock",
        0,
        "申请维修",
        "指纹识别一直失败，只能用密码开锁，电池是新换的",
        "赵丽",
        "15021873364",
        "广东省深圳市南山区科技园科苑路 15 号 3 栋 2201 室",
        (("assigned", ""), ("resolved", "已远程指导重新录入指纹，并升级门锁固件")),
    ),
    Case(
        "old",
        "camera",
        1,
        "报修",
        "摄像头进水后无法开机，指示灯不亮",
        "孙师傅",
        "13705716682",
        "浙江省宁波市鄞州区天童南路 588 号 B 座 808 室",
        (
            ("assigned", ""),
            ("resolved", "已更换电源板并做防水处理"),
            ("closed", "设备已寄回，客户确认正常"),
        ),
    ),
    Case(
        "unknown",
        "camera",
        2,
        "报修",
        "外壳摔裂了，画面有一道横纹",
        "周先生",
        "13671938205",
        "北京市朝阳区建国路 88 号 SOHO 现代城 2 号楼 1506 室",
        serial="AS2099C3X000077",
    ),
)


def _device(category: str, pick: int) -> Device | None:
    rows = db.session.scalars(
        select(Device)
        .join(Device.model)
        .join(ProductModel.series)
        .where(Series.category == category)
        .order_by(Device.serial)
    ).all()
    return rows[pick] if pick < len(rows) else None


def _chat(openid: str, case: Case, device: Device | None) -> str:
    """File the request through the chat form, as the customer would type it."""
    from ..requests import chat

    now = datetime.now(UTC)
    answers: list[str] = []
    if device is not None and case.serial is None:
        answers.append(device.serial.lower())
    else:
        answers.append(case.serial or "")
    answers += [case.fault, case.name, case.phone, case.address]
    replies = [chat.handle_text(openid, case.request, now) or ""]
    for answer in answers:
        # The 48-hour window is counted from the customer's own messages.
        db.session.add(ChatMessage(openid=openid, direction="in", text=answer, created_at=now))
        replies.append(chat.handle_text(openid, answer, now) or "")
    if "购买日期" in replies[-1] or "什么时候买" in replies[-1]:
        replies.append(chat.handle_text(openid, "去年三月", now) or "")
    return chat.handle_text(openid, "确认", now) or ""


def run(echo: Callable[[str], Any] = print) -> int:
    """Create the demo tickets that do not exist yet; return how many were created."""
    created = 0
    for case in CASES:
        openid = f"demo_case_{case.key}"
        existing = db.session.scalar(select(Ticket).where(Ticket.openid == openid))
        if existing is not None:
            continue
        device = _device(case.category, case.pick)
        reply = _chat(openid, case, device)
        ticket = db.session.scalar(select(Ticket).where(Ticket.openid == openid))
        if ticket is None:
            echo(f"演示工单未创建 / demo ticket not created ({case.key}): {reply}")
            continue
        for state, note in case.steps:
            # Demo customers are not real WeChat users: nothing is sent to them.
            service.transition(ticket, TicketState(state), AGENT, note or None, notify=False)
        created += 1
    db.session.commit()
    rows = db.session.scalars(
        select(Ticket).where(Ticket.openid.like("demo_case_%")).order_by(Ticket.id)
    ).all()
    echo(f"工单 / tickets: {len(rows)} demo tickets ({created} new)")
    for ticket in rows:
        echo(f"  {ticket.number}  {ticket.state:<17} {service.status_url(ticket)}")
    return created
