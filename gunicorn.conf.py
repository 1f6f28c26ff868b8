"""gunicorn settings for kefu (``gunicorn wsgi:app`` reads this file from the working directory).

Every value can be set from the environment; ``.env.example`` documents them.
"""

from __future__ import annotations

import os
from typing import Any

# Loopback by default: kefu belongs behind a reverse proxy (nginx) that terminates TLS and
# sets X-Forwarded-For. Listening on every interface would let clients reach gunicorn
# directly and, with PROXY_FIX_X_FOR set, name any address they like.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: a message costs a few ms of CPU and every wait in it is bounded (database
# timeouts, no outbound calls on the reply path), so one request per process is enough and
# two workers per core keep the CPU busy while a worker waits on PostgreSQL.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
worker_class = "sync"
# WeChat gives up on a reply after 5 s; every database access is bounded well inside that
# (DB_CONNECT_TIMEOUT, DB_STATEMENT_TIMEOUT_MS, DB_REPLY_DEADLINE). A worker silent for this
# long is stuck for some other reason and is replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On a restart or shutdown, requests in flight get this long to finish (none takes 5 s).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
# Connections waiting for a free worker; a spike queues here rather than being refused.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
# The workers' heartbeat files on tmpfs: a slow disk must not make the master kill them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The app and its language models are loaded once, in the master, and every worker is a fork
# of it: a worker started by a HUP (or to replace one) takes messages within milliseconds,
# not after seconds of imports and model loading while the old workers are already gone, and
# the workers share the model's pages. The master never opens a database or Redis connection
# (post_fork drops the pools all the same), and each worker maps the knowledge-base index in
# the background (post_worker_init), answering politely and reporting 503 on /healthz until
# it is ready. New code therefore needs a new master: `systemctl restart`, or USR2 for a
# restart without a gap (docs/deploy.md); a HUP restarts the workers on the loaded code.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"


def _is_kefu(app: Any) -> bool:
    return getattr(app, "name", "") == "kefu"  # the benchmarks' echo app shares these settings


def on_starting(server: Any) -> None:
    """Load the language models before the first fork, so every worker starts with them."""
    if preload_app and _is_kefu(server.app.wsgi()):
        from kefu.nlu import load_models

        load_models()


def post_fork(server: Any, worker: Any) -> None:
    """Never use a connection pool inherited from the master (it should be empty anyway)."""
    if not preload_app:
        return  # the worker loads the app itself after this
    app = server.app.wsgi()
    if not _is_kefu(app):
        return
    from kefu.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)
    app.extensions.pop("kefu.redis", None)


def post_worker_init(worker: Any) -> None:
    """Load the knowledge-base index in the background and hand back messages kept earlier."""
    from bot import delivery
    from bot.webhook import _dispatch
    from kefu import kb

    app = worker.wsgi
    if not _is_kefu(app):
        return
    kb.warm_up(app)
    # Messages kept while the database was away, or by a worker killed while replaying them.
    delivery.start_replay(app, _dispatch)
