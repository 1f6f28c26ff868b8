"""Flask extension singletons, initialised in :func:`kefu.create_app`."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base whose constraint names are stable, so migrations can refer to them."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# Storage comes from RATELIMIT_STORAGE_URI (Redis when REDIS_URL is set, else memory); the
# client is the remote address, which PROXY_FIX_X_FOR makes the real one behind a proxy.
limiter = Limiter(key_func=get_remote_address)


def engine_options(uri: str, config: dict[str, Any]) -> dict[str, Any]:
    """Engine options for ``uri``: every database access bounded in time, no per-checkout ping."""
    options: dict[str, Any] = {
        # A ping before every checkout is a round trip per request. Connections are recycled
        # before PostgreSQL or a proxy would drop them idle, and a request that finds its
        # connection dead anyway is retried once by the webhook.
        "pool_pre_ping": False,
        "pool_recycle": config["DB_POOL_RECYCLE"],
    }
    backend = make_url(uri).get_backend_name()
    if backend == "postgresql":
        statement_ms = int(config["DB_STATEMENT_TIMEOUT_MS"])
        lock_ms = int(config["DB_LOCK_TIMEOUT_MS"])
        options["pool_timeout"] = config["DB_CONNECT_TIMEOUT"]
        options["connect_args"] = {
            # libpq's own limit on establishing a connection (TCP, TLS and authentication).
            "connect_timeout": max(1, round(config["DB_CONNECT_TIMEOUT"])),
            # A server that stops acknowledging (network black hole) drops the connection
            # instead of hanging the worker until the kernel gives up minutes later.
            "tcp_user_timeout": statement_ms + 1000,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms}",
        }
    elif backend == "sqlite":
        # Seconds a writer waits for another writer's lock before "database is locked".
        options["connect_args"] = {"timeout": int(config["DB_LOCK_TIMEOUT_MS"]) / 1000}
    options.update(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    return options


def init_db(app: Flask) -> None:
    """Initialise Flask-SQLAlchemy with the engine options for the configured database."""
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config
    )
    db.init_app(app)


def insert_for(table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the session's database (PostgreSQL or SQLite)."""
    return insert_for_dialect(db.session.get_bind().dialect.name, table)


def insert_for_dialect(dialect: str, table: Any) -> Any:
    """The same for ``dialect``: for statements built once per dialect and reused."""
    return sqlite_insert(table) if dialect == "sqlite" else pg_insert(table)
