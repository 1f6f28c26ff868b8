"""What the conversation says about the product: the scanned device, serials and model codes.

A user who scanned a device's label, or who names a serial or a model code, is asking about that
product: the KB entries are narrowed to the ones about it (or about no product in particular). A
serial in a warranty question is answered with that device's warranty, exactly as the public
lookup shows it (model, in or out of warranty, end date), by the one warranty rule.
"""

from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from . import revision
from .catalog import devices, warranty
from .catalog.content import REVISION_KEY as CATALOG_REVISION
from .catalog.models import Device, ProductModel, Series
from .extensions import db

__all__ = ["is_repeat", "products_for", "warranty_reply"]

# Serial- or model-like tokens: Latin letters and digits with at least one digit (C3H26100001,
# AS-C3H). Checked against the catalogue, so a random code matches nothing.
_CODE_RE = re.compile(r"(?<![0-9A-Za-z])[A-Za-z0-9][A-Za-z0-9._-]{2,63}(?![0-9A-Za-z])")
# The warranty question itself; these are the words of the concept, in both scripts' simplified
# form (the message is converted before matching) and in English.
_WARRANTY_RE = re.compile(r"保修|质保|保固|过保|在保|warranty", re.IGNORECASE)
_models: tuple[tuple[str, str], dict[str, str]] = (("", ""), {})
LOOKUP_LIMITED = "您查询得太频繁了，请稍后再试；如需帮助请回复“人工”。"


def _model_categories() -> dict[str, str]:
    """Model code (upper case) -> category, reread when the catalogue revision changes."""
    global _models
    key = (str(db.engine.url), revision.latest(CATALOG_REVISION))
    if _models[0] == key:
        return _models[1]
    rows = db.session.execute(
        select(ProductModel.code, Series.category).join(Series, ProductModel.series_id == Series.id)
    ).all()
    cached = {code.upper(): category for code, category in rows}
    _models = (key, cached)
    return cached


def _codes(message: str) -> list[str]:
    return [
        m.group().upper() for m in _CODE_RE.finditer(message) if any(c.isdigit() for c in m.group())
    ]


def _serials(message: str) -> list[str]:
    return [code for code in _codes(message) if devices.is_valid_serial(code)]


def _first_device(serials: list[str]) -> Device | None:
    return next((d for d in map(devices.by_serial, serials) if d is not None), None)


def _device_in(message: str) -> Device | None:
    return _first_device(_serials(message))


def _products_of(device: Device) -> set[str]:
    return {device.model.code.upper(), device.model.series.category}


def products_for(message: str, device_id: int | None = None) -> frozenset[str]:
    """Products the message names (model codes, serials) or else the conversation's device."""
    found: set[str] = set()
    models = _model_categories()
    for code in _codes(message):
        if code in models:
            found |= {code, models[code]}
    device = _device_in(message)
    if device is None and not found and device_id is not None:
        device = db.session.scalar(
            select(Device)
            .where(Device.id == device_id)
            .options(joinedload(Device.model).joinedload(ProductModel.series))
        )
    if device is not None:
        found |= _products_of(device)
    return frozenset(found)


def _lookup_allowed(openid: str) -> bool:
    """Count one serial lookup of ``openid`` against ``WARRANTY_LOOKUP_LIMIT``.

    The chat is one more way of looking a device up by its serial, so it has the public
    lookup's allowance (per user here, as the web form's is per client): the answer tells a
    serial that exists from one that does not, and serials run in sequence.
    """
    from limits import parse_many

    from .extensions import limiter

    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return True
    strategy = limiter.limiter
    limits = parse_many(str(current_app.config["WARRANTY_LOOKUP_LIMIT"]))
    return all(strategy.hit(item, "chat-serial-lookup", openid) for item in limits)


def warranty_reply(message: str, openid: str = "") -> str | None:
    """The warranty of the device whose serial a warranty question names, else None."""
    from .nlu.prep import simplified

    if not _WARRANTY_RE.search(simplified(message)):
        return None
    serials = _serials(message)
    if not serials:
        return None
    if not _lookup_allowed(openid):
        return LOOKUP_LIMITED
    device = _first_device(serials)
    if device is None:
        return None
    status = warranty.compute(device)
    model = device.model.name or device.model.code
    if status.end is None:
        return f"{model}（{device.model.code}）暂无可用的保修起始日期，请回复“人工”由客服为您核实。"
    state = "在保修期内" if status.in_warranty else "已过保修期"
    return f"您的 {model}（{device.model.code}）{state}，保修截止 {status.end.isoformat()}。"


# Shorter repeats ("好的", "1") are acknowledgements or choices, not a complaint said again.
_REPEAT_MIN_CHARS = 6


def _fold(text: str) -> str:
    from .nlu.prep import prepare

    return prepare(text).replace(" ", "")


def is_repeat(message: str, previous: str | None) -> bool:
    """True when the user sends the same message again: what the bot said did not help."""
    if not previous:
        return False
    folded = _fold(message)
    return len(folded) >= _REPEAT_MIN_CHARS and folded == _fold(previous)
