"""gunicorn settings for kefu (``gunicorn wsgi:app`` reads this file from the working directory)."""

from __future__ import annotations

import os
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# WeChat gives up on a reply after 5 s; nothing kefu serves should take near that long.
timeout = 30


def post_worker_init(worker: Any) -> None:
    """Build the knowledge-base index as each worker starts, before its first message."""
    from kefu import kb

    kb.warm_up(worker.wsgi)
