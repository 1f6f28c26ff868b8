"""Shared revision tokens: how every worker learns that data it caches has changed.

A revision is a random token in the ``settings`` table, replaced in the same transaction as
the change. Workers read it at most once per ``REVISION_CHECK_MS``, so between checks a
request costs no query for it, and a change reaches every worker within that interval (at
once in the process that made it). The database is the one service every worker already
depends on, so no other one is needed for this.
"""

from __future__ import annotations

import time
import uuid

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from .extensions import db
from .models import Setting

# Per (database, key): monotonic time of the last read, and the token then.
_seen: dict[tuple[str, str], tuple[float, str]] = {}


def bump(key: str, session: Session | None = None) -> None:
    """Give ``key`` a new token in the current transaction (the caller commits)."""
    session = session or db.session
    # A random token, not a counter: a rebuilt or restored database can never reuse an old one.
    token = uuid.uuid4().hex
    setting = session.get(Setting, key)
    if setting is None:
        session.add(Setting(key=key, value=token))
    else:
        setting.value = token
    forget()


def read(key: str) -> str:
    """The token as stored now ("0" before the first change)."""
    return db.session.scalar(select(Setting.value).where(Setting.key == key)) or "0"


def latest(key: str) -> str:
    """The token, read from the database at most once per ``REVISION_CHECK_MS``."""
    cache_key = (str(db.engine.url), key)
    now = time.monotonic()
    seen = _seen.get(cache_key)
    if seen is not None and now - seen[0] < current_app.config["REVISION_CHECK_MS"] / 1000:
        return seen[1]
    token = read(key)
    _seen[cache_key] = (now, token)
    return token


def forget() -> None:
    """Read every token afresh next time (this process made a change; tests)."""
    _seen.clear()
