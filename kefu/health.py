"""``/healthz``: whether this worker can answer a message now (readiness for a load balancer)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import text

from . import dbguard, kb, spool
from .extensions import db


def readiness() -> tuple[dict[str, Any], int]:
    """The probe's body and status: 200 when the index is loaded and the database answers."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    database = "ok"
    try:
        with dbguard.deadline(current_app.config["DB_CONNECT_TIMEOUT"] + 0.5):
            db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception:
        db.session.rollback()
        database = "unavailable"
    index = "loaded" if kb.ready() else "loading"
    if index == "loading" and database == "ok":
        kb.warm_up(app)  # a worker nobody has asked yet still gets ready by itself
    body: dict[str, Any] = {
        "status": "ready" if index == "loaded" and database == "ok" else "unavailable",
        "index": index,
        "database": database,
        "spooled": spool.count(current_app.config["SPOOL_DIR"]),
    }
    return body, 200 if body["status"] == "ready" else 503
