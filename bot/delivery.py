"""A delivery from WeChat, handled exactly once, answered within 5 s even without the database.

A delivery is a single transaction: the dialog's work, then the dedupe row inserted with the
reply (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), then the commit. When the row is
already there, the delivery is a retry: its work is rolled back and the first reply is given
again. A retry that arrives while the first delivery is still running waits on the
conversation's row lock (or on the dedupe key) until the first one commits, then reads its
reply, so a user never gets two different answers to one message.

When the database is unreachable, hangs or times out (or this worker's index is still
loading), the user is told so politely at once, and the message is kept in the local spool
(:mod:`kefu.spool`). The next delivery that succeeds starts a background replay of the spool:
each kept message goes through the same path, and its answer is queued in the outbox as a
customer-service message (WeChat allows that within 48 hours of the user's message).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any
from xml.etree import ElementTree

from flask import Flask, current_app
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from kefu import dbguard, dialog, kb, spool
from kefu.extensions import db, insert_for_dialect
from kefu.models import InboundMessage
from kefu.wechat import Inbound, text_reply

log = logging.getLogger(__name__)

Dispatch = Callable[[Inbound], str]
# Old dedupe records and transcripts are pruned on about one message in this many.
PRUNE_CHANCE = 1 / 200
# A dead pooled connection is found by using it (there is no ping per request): the delivery
# is tried once more on a fresh connection, if that still leaves time for the reply.
RETRY_WITHIN_SECONDS = 1.0
# What the database being away looks like: refused, timed out, cut, or no pool slot.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, kb.NotReady)
# Events a person caused and waits on; the others (unfollow, agent session closed) get no text.
ANSWERED_EVENTS = frozenset(dialog.FOLLOW_EVENTS) | {"scan", "click", "scancode_waitmsg"}

_replaying = threading.Lock()


def process_once(inbound: Inbound, dispatch: Dispatch) -> str:
    """The reply XML for ``inbound`` ("" for none); a retry gets the first delivery's reply."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    breaker = dbguard.breaker()
    if breaker.open:
        # The database is known to be away: do not spend seconds finding out again.
        keep(inbound, "database")
        return busy_reply(inbound)
    directory = app.config["SPOOL_DIR"]
    if spool.has_pending(directory) and inbound.openid in spool.waiting_openids(directory):
        # Earlier messages of this user are still kept: this one waits behind them, so a
        # conversation (a request form) is never handled out of order.
        keep(inbound, "behind")
        start_replay(app, dispatch)
        return busy_reply(inbound)
    started = time.monotonic()
    try:
        reply = _within_deadline(inbound, dispatch, started)
    except UNAVAILABLE as exc:
        keep(inbound, "index" if isinstance(exc, kb.NotReady) else "database")
        _abandon()
        log.warning("delivery %s kept for later: %s", inbound.dedupe_key, _short(exc))
        if not isinstance(exc, kb.NotReady):
            breaker.trip(
                lambda: _probe(app),
                app.config["DB_PROBE_INTERVAL"],
                on_close=lambda: start_replay(app, dispatch),
            )
        return busy_reply(inbound)
    if spool.has_pending(directory):
        start_replay(app, dispatch)
    return reply


def _probe(app: Flask) -> None:
    """One cheap query against the database, bounded like a reply; raises while it is away."""
    with app.app_context():
        try:
            with dbguard.deadline(app.config["DB_REPLY_DEADLINE"]):
                db.session.execute(text("SELECT 1"))
        finally:
            db.session.remove()


def _within_deadline(inbound: Inbound, dispatch: Dispatch, started: float) -> str:
    limit = current_app.config["DB_REPLY_DEADLINE"]
    if inbound.kind in {"text", "voice"} or inbound.event == "click":
        # Wait for the index (briefly) before taking any lock, not while holding the user's
        # row; its one database read (the KB revision, at most once a second) is bounded too.
        with dbguard.deadline(limit):
            kb.latest_revision()
        kb.snapshot()
        db.session.rollback()
    with dbguard.deadline(limit):
        try:
            return _attempt(inbound, dispatch)
        except DBAPIError as exc:
            if not exc.connection_invalidated or time.monotonic() - started > RETRY_WITHIN_SECONDS:
                raise
            _abandon()
            log.info("database connection was gone; trying %s again", inbound.dedupe_key)
            return _attempt(inbound, dispatch)


def _abandon() -> None:
    """End the session's transaction even when its connection is broken or was cut."""
    try:
        db.session.rollback()
    except Exception:
        # The connection died under the rollback: drop it; the pool makes a new one.
        db.session.invalidate()


def _attempt(inbound: Inbound, dispatch: Dispatch) -> str:
    return _handle(inbound, dispatch)[0]


def _handle(inbound: Inbound, dispatch: Dispatch) -> tuple[str, bool]:
    """The reply, and whether this delivery was the first (not a retry of one handled before)."""
    reply = dispatch(inbound)
    # An unfollow's own record keeps no openid: the user asked to be forgotten.
    openid = None if inbound.event == "unsubscribe" else inbound.openid
    stmt = _dedupe_insert(db.session.get_bind().dialect.name)
    values = {
        "dedupe_key": inbound.dedupe_key,
        "openid": openid,
        "reply": reply,
        "created_at": datetime.now(UTC),
    }
    if db.session.connection().execute(stmt, values).scalar() is None:
        # A retry: the first delivery committed (this insert waited for it if it was running).
        db.session.rollback()
        stored = db.session.scalar(
            select(InboundMessage.reply).where(InboundMessage.dedupe_key == inbound.dedupe_key)
        )
        db.session.rollback()
        return stored or "", False
    if random.random() < PRUNE_CHANCE:
        dialog.prune(datetime.now(UTC))
    db.session.commit()
    return reply, True


@cache
def _dedupe_insert(dialect: str) -> Any:
    """The delivery's record, written once with its reply; nothing if it is already there."""
    table = InboundMessage.__table__
    columns = ("dedupe_key", "openid", "reply", "created_at")
    return (
        insert_for_dialect(dialect, table)
        .values({c: bindparam(c) for c in columns})
        .on_conflict_do_nothing(index_elements=[table.c.dedupe_key])
        .returning(table.c.id)
    )


def busy_reply(inbound: Inbound) -> str:
    """The polite "try again later" reply, built without the database."""
    if inbound.kind == "event" and inbound.event not in ANSWERED_EVENTS:
        return ""
    return text_reply(inbound, dialog.text("busy"))


def keep(inbound: Inbound, reason: str) -> None:
    """Put ``inbound`` in the spool; if even that fails, the log line is all that is left."""
    record = {
        "inbound": dataclasses.asdict(inbound),
        "received_at": datetime.now(UTC).isoformat(),
        "reason": reason,
    }
    try:
        spool.keep(current_app.config["SPOOL_DIR"], record)
    except OSError:
        log.exception("could not keep delivery %s: %r", inbound.dedupe_key, record)


def start_replay(app: Flask, dispatch: Dispatch) -> threading.Thread | None:
    """Replay the spool in a background thread, unless this process is replaying already."""
    if not _replaying.acquire(blocking=False):
        return None

    def work() -> None:
        try:
            with app.app_context():
                replay(dispatch)
                db.session.remove()
        except Exception:
            log.exception("replaying kept deliveries failed")
        finally:
            _replaying.release()

    thread = threading.Thread(target=work, name="kefu-spool-replay", daemon=True)
    thread.start()
    return thread


def replay(dispatch: Dispatch) -> int:
    """Handle every kept delivery (in an app context); return how many were handled."""
    directory = current_app.config["SPOOL_DIR"]
    handled = 0
    # Oldest first: what a killed worker left, what this one could not finish, then the rest.
    files = [p for p in map(spool.adopt, spool.orphans(directory)) if p is not None]
    files += spool.mine(directory)
    claimed = spool.claim(directory)
    if claimed is not None:
        files.append(claimed)
    for path in files:
        records = spool.read(path)
        for position, record in enumerate(records):
            inbound = Inbound(**record["inbound"])
            try:
                with dbguard.deadline(current_app.config["DB_REPLY_DEADLINE"]):
                    reply, first = _handle(inbound, dispatch)
            except UNAVAILABLE:
                _abandon()
                # Still away: the rest stays in this file, in order, for the next replay.
                spool.put_back(path, records[position:])
                return handled
            except Exception:
                _abandon()
                log.exception("kept delivery %s failed; set aside", inbound.dedupe_key)
                spool.keep(directory, record, name=spool.FAILED)
                continue
            handled += 1
            if first:  # else a retry from WeChat was answered in the meantime
                _send_late(inbound, reply)
        path.unlink()
    return handled


def _send_late(inbound: Inbound, reply: str) -> None:
    """Send a replayed delivery's text answer through the outbox (a customer-service message)."""
    if not reply:
        return
    try:
        tree = ElementTree.fromstring(reply)
    except ElementTree.ParseError:
        return
    if tree.findtext("MsgType") != "text":
        return  # a handoff: the agents' queue has it, nothing to send
    from kefu import outbox

    try:
        outbox.enqueue_text(
            inbound.openid,
            tree.findtext("Content") or "",
            purpose="late_answer",
            ref=inbound.dedupe_key[:64],
        )
        db.session.commit()
    except Exception:
        _abandon()
        log.warning("late answer to %s not queued", inbound.dedupe_key, exc_info=True)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
