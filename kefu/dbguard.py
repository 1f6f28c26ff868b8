"""A wall-clock limit on the database work of one request, enforced from outside the request.

``statement_timeout`` is enforced by PostgreSQL itself, so it does nothing when the server or
the network in between stops answering altogether: the worker would wait in ``recv`` until
gunicorn kills it. Inside :func:`deadline`, every connection the thread uses is registered
with a watchdog thread, which shuts the connection's socket down when the deadline passes;
the blocked call then fails at once with a disconnect error that the caller can handle.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_local = threading.local()
_lock = threading.Lock()
_wake = threading.Condition(_lock)
# id of a guard -> (deadline on the monotonic clock, sockets' file descriptors).
_guards: dict[int, tuple[float, set[int]]] = {}
_watchdog: threading.Thread | None = None
# When the watchdog wakes next on its own; a guard that ends later needs no wake-up call (the
# common case: every request's deadline is later than those before it).
_next_wake = float("inf")


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Cut every database connection this thread uses once ``seconds`` have passed."""
    guard = object()
    key = id(guard)
    at = time.monotonic() + seconds
    with _lock:
        _guards[key] = (at, set())
        _start_watchdog()
        if at < _next_wake:
            _wake.notify()
    previous = getattr(_local, "guard", None)
    _local.guard = key
    try:
        yield
    finally:
        _local.guard = previous
        with _lock:
            _guards.pop(key, None)


def _register(dbapi_connection: Any) -> None:
    key = getattr(_local, "guard", None)
    if key is None:
        return
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:  # SQLite: a file, nothing to cut
        return
    try:
        fd = fileno()
    except Exception:  # already closed: the call is about to fail on its own
        return
    with _lock:
        guard = _guards.get(key)
        if guard is not None:
            guard[1].add(fd)


@event.listens_for(Engine, "before_cursor_execute")
def _before_execute(conn: Any, cursor: Any, statement: Any, *args: Any) -> None:
    _register(conn.connection.dbapi_connection)


@event.listens_for(Engine, "begin")
def _on_begin(conn: Any) -> None:
    _register(conn.connection.dbapi_connection)


def _start_watchdog() -> None:
    global _watchdog, _next_wake
    if _watchdog is None or not _watchdog.is_alive():
        _next_wake = float("inf")
        _watchdog = threading.Thread(target=_watch, name="db-deadline", daemon=True)
        _watchdog.start()


def _watch() -> None:
    global _next_wake
    with _lock:
        while True:
            now = time.monotonic()
            expired = [key for key, (at, _) in _guards.items() if at <= now]
            for key in expired:
                _, fds = _guards.pop(key)
                for fd in fds:
                    _cut(fd)
            # Guards that ended before their deadline are gone: the wake-up is then early,
            # which only costs a look at the table.
            _next_wake = min((at for at, _ in _guards.values()), default=now + 60)
            _wake.wait(timeout=_next_wake - now)


def _cut(fd: int) -> None:
    """Shut a connection's socket down; the thread blocked on it gets an error at once."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
        log.warning("database did not answer in time; connection cut")
    except OSError:
        pass
    finally:
        sock.detach()  # the descriptor still belongs to the driver, which closes it


class Breaker:
    """Whether the database is known to be away, so a request need not wait to find out.

    When a request finds the database unreachable or hanging, the breaker opens: for the
    requests after it, :meth:`open` is True at once and they answer without touching the
    database. A background thread probes the database every ``interval`` seconds and closes
    the breaker when it answers again, then calls ``on_close`` (replaying kept messages).
    """

    def __init__(self) -> None:
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._prober: threading.Thread | None = None

    @property
    def open(self) -> bool:
        """True while the database is known to be away."""
        return self._open.is_set()

    def trip(self, probe: Any, interval: float, on_close: Any = None) -> None:
        """Open the breaker; ``probe()`` is retried in the background until it succeeds."""
        self._open.set()
        with self._lock:
            if self._prober is not None and self._prober.is_alive():
                return

            def run() -> None:
                while self._open.is_set():
                    time.sleep(interval)
                    try:
                        probe()
                    except Exception as exc:
                        log.info("database still away: %s", str(exc).splitlines()[0][:200])
                        continue
                    self._open.clear()
                    log.warning("database answers again")
                    if on_close is not None:
                        on_close()

            self._prober = threading.Thread(target=run, name="db-probe", daemon=True)
            self._prober.start()

    def reset(self) -> None:
        """Close the breaker without probing (tests)."""
        self._open.clear()


_breakers: dict[str, Breaker] = {}


def breaker() -> Breaker:
    """This process's breaker for the current app's database."""
    from .extensions import db

    key = str(db.engine.url)
    found = _breakers.get(key)
    return found if found is not None else _breakers.setdefault(key, Breaker())


def forget() -> None:
    """Close every breaker and stop their probes (tests: the next test is a new process)."""
    for each in _breakers.values():
        each.reset()
    _breakers.clear()
