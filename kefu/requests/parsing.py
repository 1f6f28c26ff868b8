"""Reading what people type: serials, phone numbers, dates, in the ways they really type them."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

from .. import accounts

_CN_NUM = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}


# Chinese text's own punctuation, which NFKC would turn into ASCII: kept as typed, so a fault
# description or an address reads as the customer wrote it ("画面发黑，红外灯不亮").
_CJK_PUNCTUATION_RE = re.compile("([\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1f])")


def halfwidth(text: str) -> str:
    """Full-width letters, digits and symbols as their ASCII forms (ＡＳ２０２４ -> AS2024);
    the comma, colon, semicolon, brackets, ! and ? of Chinese text stay as they are."""
    parts = _CJK_PUNCTUATION_RE.split(text or "")
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))


def cn_number(text: str) -> int | None:
    """A small Chinese or Arabic number: 三 -> 3, 十二 -> 12, 二十三 -> 23, 12 -> 12."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text or any(c not in _CN_NUM for c in text):
        return None
    if "十" not in text:
        value = 0
        for c in text:
            value = value * 10 + _CN_NUM[c]
        return value
    tens, _, ones = text.partition("十")
    return (_CN_NUM[tens] if tens else 1) * 10 + (_CN_NUM[ones] if ones else 0)


# --- serials ---------------------------------------------------------------------------------


def serial_candidates(text: str, model_codes: list[str]) -> tuple[str, str | None]:
    """The serial in what the user typed, and the model code they put in front, if any.

    "ａｓ２０２４ｃ３ｈ０００００１", "as 2024 c3h 000001", "AS-C3H AS2024C3H000001" and
    "型号AS-C3H 序列号AS2024C3H000001" all give AS2024C3H000001.
    """
    cleaned = halfwidth(text).upper()
    for label in ("序列号", "SN", "S/N", "型号", "MODEL", ":", "："):
        cleaned = cleaned.replace(label, " ")
    said_model = None
    for code in sorted(model_codes, key=len, reverse=True):
        pattern = re.compile(r"(?<![A-Z0-9])" + re.escape(code.upper()) + r"(?![A-Z0-9])")
        if pattern.search(cleaned):
            said_model = code
            rest = pattern.sub(" ", cleaned, count=1)
            if re.search(r"[A-Z0-9]{4,}", rest.replace(" ", "")):
                cleaned = rest
            break
    serial = "".join(ch for ch in cleaned if ch.isalnum() or ch in "-_.")
    serial = serial.strip("-_.")
    return serial, said_model


# --- phone numbers ---------------------------------------------------------------------------

_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_PHONE_IN_TEXT_RE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})(?!\d)")


def normalise_phone(raw: str) -> str:
    """Digits of a mainland mobile number, full-width and separators removed, +86 dropped."""
    return accounts.normalise_phone(halfwidth(raw).replace(".", "").replace("—", "-"))


def is_plausible_mobile(phone: str) -> bool:
    """A real-looking mainland mobile: 1[3-9] + 9 digits, not a run or a repeated digit."""
    if not _MOBILE_RE.match(phone):
        return False
    tail = phone[3:]
    if len(set(tail)) <= 2:
        return False  # 13888888888, 13800000000-like fillers
    ascending = "0123456789012345"
    descending = "9876543210987654"
    return not (tail in ascending or tail in descending)


def phone_in_text(text: str) -> str | None:
    """A mobile number written somewhere in ``text`` (full-width and separators allowed)."""
    match = _PHONE_IN_TEXT_RE.search(halfwidth(text))
    return re.sub(r"[\s-]", "", match.group(1)) if match else None


# --- dates -----------------------------------------------------------------------------------

_ISO_RE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*[日号]?)?\s*(?:月)?"
)
_MD_RE = re.compile(r"^(\d{1,2})\s*[/.-]\s*(\d{1,2})$")
_CN_MD_RE = re.compile(
    r"^(?:(今年|去年|前年))?([一二三四五六七八九十\d]{1,3})月(?:([一二三四五六七八九十\d]{1,3})[日号])?(?:份)?$"
)
_RELATIVE = {"今天": 0, "昨天": 1, "前天": 2}
_YEAR_WORDS = {"今年": 0, "去年": 1, "前年": 2}


def parse_date(text: str, today: date) -> date | None:
    """A purchase date as people write it.

    2025-03-01, 2025/3/1, 2025.3.1, 2025年3月1日, 2025年3月, 去年三月, 三月五号, 3/1, 昨天,
    上个月. A month without a day is taken as its first day; a day-and-month without a year is
    the latest such day not after today.
    """
    raw = halfwidth(text).strip().replace(" ", "")
    raw = re.sub(r"(左右|前后|买的|购买的|购买|买)?[。.!！]*$", "", raw)
    if not raw:
        return None
    if raw in _RELATIVE:
        return today - timedelta(days=_RELATIVE[raw])
    if raw in {"上个月", "上月"}:
        first = today.replace(day=1) - timedelta(days=1)
        return first.replace(day=1)
    if raw in {"上周", "上星期"}:
        return today - timedelta(days=7)
    match = _ISO_RE.fullmatch(raw)
    if match:
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
        return _safe_date(year, month, day)
    match = _MD_RE.match(raw)
    if match:
        return _latest(today, int(match.group(1)), int(match.group(2)))
    match = _CN_MD_RE.match(raw)
    if match:
        year_word, month_s, day_s = match.groups()
        month = cn_number(month_s)
        day = cn_number(day_s) if day_s else 1
        if month is None or day is None:
            return None
        if year_word:
            return _safe_date(today.year - _YEAR_WORDS[year_word], month, day)
        return _latest(today, month, day)
    match = re.fullmatch(r"(今年|去年|前年)", raw)
    if match:
        return _safe_date(today.year - _YEAR_WORDS[raw], 1, 1)
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _latest(today: date, month: int, day: int) -> date | None:
    candidate = _safe_date(today.year, month, day)
    if candidate is None:
        return None
    if candidate > today:
        candidate = _safe_date(today.year - 1, month, day)
    return candidate
