"""Background jobs: work that must stay off WeChat's 5-second reply path.

With ``REDIS_URL`` set, jobs go to an RQ queue in Redis, with retries and backoff, and
``flask --app wsgi worker`` runs them. Without Redis (the zero-config demo) they run in a
background thread of the web process, with the same retries. With ``JOBS_EAGER`` (tests) they
run at once, in the calling thread, in an app context of their own.

A job is a module-level function; it runs inside an app context and owns its transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db

log = logging.getLogger(__name__)

QUEUE_NAME = "kefu"
# Seconds between attempts: the first retries come quickly (a WeChat hiccup), later ones wait.
DEFAULT_BACKOFF = (5, 30, 120, 600)
_AFTER_COMMIT_KEY = "kefu.after_commit"


def enqueue(func: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """Run ``func(*args, **kwargs)`` in the background; returns the RQ job id when queued."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    path = f"{func.__module__}.{func.__qualname__}"
    if "." in func.__qualname__ or func.__name__ == "<lambda>":
        raise ValueError(f"jobs must be module-level functions, not {path}")
    if app.config.get("JOBS_EAGER"):
        _run_eager(app, func, args, kwargs)
        return None
    queue = _queue(app)
    if queue is not None:
        from rq import Retry

        backoff = list(app.config.get("JOBS_BACKOFF") or DEFAULT_BACKOFF)
        job = queue.enqueue_call(
            func=path,
            args=args,
            kwargs=kwargs,
            retry=Retry(max=len(backoff), interval=backoff),
            failure_ttl=7 * 24 * 3600,
        )
        return str(job.id)
    thread = threading.Thread(
        target=_run_in_thread, args=(app, func, args, kwargs), daemon=True, name="kefu-job"
    )
    thread.start()
    # Kept only to be waited for (CLI commands, tests); finished ones are dropped.
    _threads[:] = [t for t in _threads if t.is_alive()]
    _threads.append(thread)
    return None


def after_commit(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Enqueue the job once the current transaction commits (dropped if it rolls back)."""
    pending = db.session.info.setdefault(_AFTER_COMMIT_KEY, [])
    pending.append((func, args, kwargs))


def _queue(app: Flask) -> Any:
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    from rq import Queue

    from .integrations import redis_client

    return Queue(QUEUE_NAME, connection=redis_client(), default_timeout=120)


def _run_eager(app: Flask, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
    # A fresh app context gives the job its own database session, as a worker would have.
    with app.app_context():
        try:
            func(*args, **kwargs)
        finally:
            db.session.remove()


def _run_in_thread(app: Flask, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
    backoff = list(app.config.get("JOBS_BACKOFF") or DEFAULT_BACKOFF)
    for attempt in range(len(backoff) + 1):
        with app.app_context():
            try:
                func(*args, **kwargs)
                return
            except Exception:
                log.exception("job %s failed (attempt %d)", func.__name__, attempt + 1)
                db.session.rollback()
            finally:
                db.session.remove()
        if attempt < len(backoff):
            time.sleep(backoff[attempt])
    _count_failure(app)


def _count_failure(app: Flask) -> None:
    with app.app_context():
        from .models import Setting

        row = db.session.get(Setting, "jobs:failed")
        if row is None:
            db.session.add(Setting(key="jobs:failed", value="1"))
        else:
            row.value = str(int(row.value) + 1)
        db.session.commit()


_threads: list[threading.Thread] = []


def wait_for_threads(timeout: float = 10.0) -> None:
    """Wait for in-process job threads to finish (the demo's CLI commands and tests)."""
    deadline = time.monotonic() + timeout
    while _threads:
        thread = _threads.pop()
        thread.join(max(0.0, deadline - time.monotonic()))


def drain(app: Flask) -> int:
    """Run every job waiting in the RQ queue now, in this process; return how many ran."""
    queue = None
    with app.app_context():
        queue = _queue(app)
        if queue is None:
            return 0
        from rq import SimpleWorker

        count = queue.count
        worker_class = type("KefuDrain", (_AppWorkerMixin, SimpleWorker), {"flask_app": app})
        worker = worker_class([queue], connection=queue.connection)
        worker.work(burst=True, logging_level="WARNING")
        return int(count)


def failed_count(app: Flask) -> int:
    """Jobs that gave up after their last retry (RQ's failed registry plus in-process ones)."""
    from .models import Setting

    row = db.session.get(Setting, "jobs:failed")
    total = int(row.value) if row is not None else 0
    queue = _queue(app)
    if queue is not None:
        try:
            total += queue.failed_job_registry.count
        except Exception:  # Redis unreachable: report what the database knows
            log.warning("cannot read RQ's failed registry", exc_info=True)
    return total


def _session_committed(session: Session) -> None:
    pending = session.info.pop(_AFTER_COMMIT_KEY, None)
    if not pending:
        return
    for func, args, kwargs in pending:
        try:
            enqueue(func, *args, **kwargs)
        except Exception:
            # The work is committed; a queue outage must not turn the reply into an error.
            # Rows left pending are picked up by the sweep.
            log.exception("could not enqueue %s", func.__name__)


def _session_rolled_back(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT_KEY, None)


event.listen(Session, "after_commit", _session_committed)
event.listen(Session, "after_soft_rollback", lambda s, previous: _session_rolled_back(s))


class _AppWorkerMixin:
    """Runs every RQ job inside the Flask app's context."""

    flask_app: Flask

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        with self.flask_app.app_context():
            try:
                return bool(super().perform_job(job, queue, *args, **kwargs))  # type: ignore[misc]
            finally:
                db.session.remove()


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run the jobs waiting now, then exit.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker for kefu's background jobs (needs REDIS_URL)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queue = _queue(app)
    if queue is None:
        raise click.ClickException(
            "REDIS_URL 未设置：没有 Redis 时任务在 Web 进程内运行 / "
            "REDIS_URL is not set: without Redis, jobs run inside the web process"
        )
    from rq import SimpleWorker

    # Jobs run in this process, one after another (no fork per job): they are short network
    # calls, and a forked child would share the parent's database connections.
    worker_class = type("KefuWorker", (_AppWorkerMixin, SimpleWorker), {"flask_app": app})
    worker = worker_class([queue], connection=queue.connection)
    click.echo(f"kefu worker on queue {QUEUE_NAME!r} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    # The scheduler moves retries whose backoff has passed back onto the queue.
    worker.work(burst=burst, with_scheduler=True)


def init_app(app: Flask) -> None:
    """Register ``flask worker``."""
    app.cli.add_command(worker_command)
