"""Ticket numbers people can read out on the phone, with a check character, not walkable.

``KF-20261201-7K3Q-X``: the day it was opened, four random characters of Crockford's base32
(no I, L, O or U, so nothing is misheard as 1 or 0), and a check character over both, from
the same alphabet (an ISO 7064 hybrid system, MOD 33,32), that catches any single mistyped
character and most swapped pairs. A number alone reveals nothing: queries are answered only to
the ticket's own customer.
"""

from __future__ import annotations

import re
import secrets
from datetime import date

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "KF"
_NUMBER_RE = re.compile(r"KF-?(\d{8})-?([0-9A-Z]{4})-?([0-9A-Z])")
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def check_char(body: str) -> str:
    """The check character of the date and random parts (digits and Crockford letters)."""
    product = 32
    for char in body:
        total = (product + ALPHABET.index(char)) % 32 or 32
        product = (2 * total) % 33
    return ALPHABET[(1 - product) % 32]


def generate(day: date) -> str:
    """A new number for a ticket opened on ``day``."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(4))
    stamp = day.strftime("%Y%m%d")
    return f"{PREFIX}-{stamp}-{random_part}-{check_char(stamp + random_part)}"


def normalise(text: str) -> str | None:
    """The number in ``text`` in its canonical form when its check character is right."""
    cleaned = "".join(text.split()).upper().replace("－", "-").replace("—", "-")
    match = _NUMBER_RE.search(cleaned)
    if not match:
        return None
    stamp, random_part, check = match.groups()
    random_part = random_part.translate(_CONFUSABLE)
    check = check.translate(_CONFUSABLE)
    if any(c not in ALPHABET for c in random_part + check):
        return None
    if check_char(stamp + random_part) != check:
        return None
    return f"{PREFIX}-{stamp}-{random_part}-{check}"


def looks_like_number(text: str) -> bool:
    """Whether ``text`` contains something shaped like a ticket number (valid or not)."""
    return bool(_NUMBER_RE.search("".join(text.split()).upper()))
