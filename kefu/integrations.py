"""Builds the WeChat API clients from the app's settings, with a token store every worker shares."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from . import dbguard
from .extensions import db, insert_for
from .models import Setting, WebhookNonce
from .wechat import (
    ApiClient,
    Endpoint,
    MessageMode,
    NonceStore,
    OAuth,
    RedisNonceStore,
    RedisTokenBackend,
    TokenBackend,
)

log = logging.getLogger(__name__)


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

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold a row lock (``SELECT ... FOR UPDATE``) so one process at a time refreshes."""
        name = self.prefix + "lock:" + key
        db.session.execute(
            insert_for(Setting.__table__)
            .values(key=name, value="")
            .on_conflict_do_nothing(index_elements=["key"])
        )
        db.session.commit()
        # Held until the transaction ends: set() commits once the new token is stored. SQLite
        # has no row locks, but it lets one writer at a time in anyway.
        db.session.execute(select(Setting.key).where(Setting.key == name).with_for_update())
        try:
            yield
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()


class DbNonceStore(NonceStore):
    """Nonces in the ``webhook_nonces`` table, for installs without Redis."""

    # Old rows are deleted on about one claim in this many.
    PRUNE_CHANCE = 1 / 50
    DEADLINE = 1.0  # seconds

    def claim(self, timestamp: str, nonce: str, delivery: str, ttl: int) -> bool:
        """Record the pair for ``delivery``; False when it already carried another delivery."""
        now = datetime.now(UTC)
        key = f"{timestamp}:{nonce}"
        if dbguard.breaker().open:
            # The database is known to be away: do not spend a connect timeout finding out.
            log.warning("nonce not checked, database unavailable")
            return True
        try:
            # Bounded, so a hanging database leaves the delivery its time to be kept and
            # answered politely (kefu.delivery) within WeChat's 5 s.
            with dbguard.deadline(self.DEADLINE):
                # Inside the delivery's transaction: a concurrent use of the same nonce waits
                # on the key until this delivery commits, then finds it.
                db.session.execute(
                    insert_for(WebhookNonce.__table__)
                    .values(key=key, delivery=delivery, created_at=now)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                seen = db.session.scalar(
                    select(WebhookNonce.delivery).where(WebhookNonce.key == key)
                )
                if random.random() < self.PRUNE_CHANCE:
                    prune_nonces(now - timedelta(seconds=ttl))
        except (DBAPIError, PoolTimeout) as exc:
            # Database away: the signature and its time window still hold, and the delivery
            # path keeps the message for later; refusing it would lose it.
            db.session.rollback()
            log.warning("nonce not checked, database unavailable: %s", type(exc).__name__)
            return True
        return seen is None or seen == delivery


def prune_nonces(before: datetime) -> None:
    """Delete remembered nonces older than ``before`` (their signatures have expired)."""
    db.session.execute(delete(WebhookNonce).where(WebhookNonce.created_at < before))


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


def message_mode(config: Mapping[str, Any]) -> MessageMode:
    """The configured 消息加解密方式; unset, it is safe with an EncodingAESKey and plain without."""
    mode = str(config.get("WECHAT_MESSAGE_MODE") or "").strip().lower()
    if not mode:
        return MessageMode.SAFE if config.get("WECHAT_ENCODING_AES_KEY") else MessageMode.PLAIN
    try:
        return MessageMode(mode)
    except ValueError:
        raise RuntimeError(
            f"WECHAT_MESSAGE_MODE must be plain, compatible or safe, not {mode!r}"
        ) from None


def build_endpoint(config: Mapping[str, Any]) -> Endpoint:
    """The webhook's protocol settings, checked: RuntimeError when they cannot work."""
    endpoint = Endpoint(
        token=str(config.get("WECHAT_TOKEN") or ""),
        encoding_aes_key=str(config.get("WECHAT_ENCODING_AES_KEY") or ""),
        app_id=str(config.get("WECHAT_APP_ID") or ""),
        mode=message_mode(config),
        max_age=int(config.get("WECHAT_SIGNATURE_MAX_AGE", 300)),
    )
    endpoint.check()
    return endpoint


def endpoint() -> Endpoint:
    """The app's webhook endpoint (built and checked once, when the app is created)."""
    built = current_app.extensions.get("kefu.endpoint")
    if built is None:
        built = current_app.extensions["kefu.endpoint"] = build_endpoint(current_app.config)
    return built  # type: ignore[no-any-return]


def nonce_store() -> NonceStore:
    """Redis when ``REDIS_URL`` is set, else the database."""
    client = redis_client()
    return RedisNonceStore(client) if client is not None else DbNonceStore()
