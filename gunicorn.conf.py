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
# No preload: each worker imports the app after the fork, so database connections and the
# Redis pool are never shared between processes, and a HUP reloads new code. The
# knowledge-base index is loaded per worker in the background (post_worker_init), so a
# worker accepts messages at once and answers politely until its index is ready, and
# /healthz reports 503 until then.
preload_app = False


def on_starting(server: Any) -> None:
    """Load the language models in the master, once: forked workers share them (copy on write).

    A worker started later (more workers, a HUP under load) then answers its first message at
    once instead of spending seconds loading its own copy. Code and the app are not preloaded,
    so a HUP still picks up a new release of kefu itself (not of its model packages).
    """
    if not str(getattr(server.app, "app_uri", "")).startswith(("wsgi", "kefu")):
        return  # the benchmarks' echo app shares these settings
    from kefu.nlu import load_models

    load_models()


def post_worker_init(worker: Any) -> None:
    """Load the knowledge-base index in the background and hand back messages kept earlier."""
    from bot import delivery
    from bot.webhook import _dispatch
    from kefu import kb

    app = worker.wsgi
    if getattr(app, "name", "") != "kefu":  # the benchmarks' echo app shares these settings
        return
    kb.warm_up(app)
    # Messages kept while the database was away, or by a worker killed while replaying them.
    delivery.start_replay(app, _dispatch)
