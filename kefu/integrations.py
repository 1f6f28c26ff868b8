"""Builds the WeChat API clients from the app's settings, with a token store every worker shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import delete

from .extensions import db
from .models import Setting
from .wechat import ApiClient, OAuth, RedisTokenBackend, TokenBackend


class DbTokenBackend(TokenBackend):
    """Token storage in the ``settings`` table, for installs without Redis."""

    prefix = "wechat:"

    def get(self, key: str) -> str | None:
        row = db.session.get(Setting, self.prefix + key)
        if row is None or (row.expires_at and row.expires_at <= datetime.now(UTC)):
            return None
        return row.value

    def set(self, key: str, value: str, ttl: int) -> None:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        row = db.session.get(Setting, self.prefix + key)
        if row is None:
            db.session.add(Setting(key=self.prefix + key, value=value, expires_at=expires))
        else:
            row.value, row.expires_at = value, expires
        # Commit at once: other workers must see the token even if the caller's work fails.
        db.session.commit()

    def delete(self, key: str) -> None:
        db.session.execute(delete(Setting).where(Setting.key == self.prefix + key))
        db.session.commit()


def redis_client() -> redis.Redis | None:
    """The app's Redis client (one connection pool per app), or None without ``REDIS_URL``."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return None
    client = current_app.extensions.get("kefu.redis")
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=2)
        current_app.extensions["kefu.redis"] = client
    return client


def token_backend() -> TokenBackend:
    """Redis when ``REDIS_URL`` is set (production), else the database."""
    client = redis_client()
    return RedisTokenBackend(client) if client is not None else DbTokenBackend()


def api_client() -> ApiClient:
    """The official account's API client; raises RuntimeError when no account is configured."""
    cfg = current_app.config
    if not (cfg["WECHAT_APP_ID"] and cfg["WECHAT_APP_SECRET"]):
        raise RuntimeError("WECHAT_APP_ID and WECHAT_APP_SECRET must be set")
    return ApiClient(
        cfg["WECHAT_APP_ID"],
        cfg["WECHAT_APP_SECRET"],
        token_backend(),
        timeout=cfg["WECHAT_HTTP_TIMEOUT"],
        api_base_url=cfg["WECHAT_API_BASE_URL"],
    )


def oauth() -> OAuth | None:
    """WeChat web authorisation, or None when no official account is configured."""
    cfg = current_app.config
    if not (cfg["WECHAT_APP_ID"] and cfg["WECHAT_APP_SECRET"]):
        return None
    return OAuth(
        cfg["WECHAT_APP_ID"],
        cfg["WECHAT_APP_SECRET"],
        timeout=cfg["WECHAT_HTTP_TIMEOUT"],
        api_base_url=cfg["WECHAT_API_BASE_URL"],
    )
