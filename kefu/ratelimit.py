"""Rate-limit storage that keeps limiting when Redis is slow or down.

Counters live in Redis so every worker of every instance counts the same client. When Redis
does not answer within ``RATELIMIT_REDIS_TIMEOUT`` seconds, this process counts in its own
memory with the same limits until Redis answers again (checked every few seconds): a client
can then get at most one allowance per process, never an unlimited one, and no page fails.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask
from limits.storage import (
    MemoryStorage,
    MovingWindowSupport,
    RedisStorage,
    SlidingWindowCounterSupport,
    Storage,
)

log = logging.getLogger(__name__)

# Scheme prefix that selects this storage in RATELIMIT_STORAGE_URI ("kefu+redis://...").
SCHEME_PREFIX = "kefu+"
# While Redis is down, try it again after this many seconds (one request pays the timeout).
RETRY_SECONDS = 5.0


class FallbackRedisStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """Redis with short timeouts, and this process's memory while Redis cannot be reached."""

    STORAGE_SCHEME = ["kefu+redis", "kefu+rediss", "kefu+redis+unix"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        timeout = float(options.pop("timeout", 0.25))
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
        self.redis = RedisStorage(uri.removeprefix(SCHEME_PREFIX), **options)
        self.memory = MemoryStorage()
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """Nothing escapes: Redis errors switch to memory instead."""
        return ()

    @property
    def redis_down(self) -> bool:
        """Whether this process is counting in memory for now."""
        return time.monotonic() < self._down_until

    def _call(self, name: str, *args: Any) -> Any:
        if not self.redis_down:
            try:
                return getattr(self.redis, name)(*args)
            except self.redis.base_exceptions as exc:
                with self._lock:
                    if not self.redis_down:
                        log.warning(
                            "rate-limit storage unreachable (%s); counting in process memory "
                            "for %.0f s",
                            exc,
                            RETRY_SECONDS,
                        )
                    self._down_until = time.monotonic() + RETRY_SECONDS
        return getattr(self.memory, name)(*args)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to a fixed-window counter."""
        return int(self._call("incr", key, expiry, amount))

    def get(self, key: str) -> int:
        """A fixed-window counter's value."""
        return int(self._call("get", key))

    def get_expiry(self, key: str) -> float:
        """When a counter resets."""
        return float(self._call("get_expiry", key))

    def check(self) -> bool:
        """Always healthy: there is always somewhere to count."""
        return True

    def reset(self) -> int | None:
        """Clear every counter (both stores)."""
        self.memory.reset()
        return self._call("reset")  # type: ignore[no-any-return]

    def clear(self, key: str) -> None:
        """Clear one counter (both stores)."""
        self.memory.clear(key)
        self._call("clear", key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take ``amount`` from a moving window if it has room."""
        return bool(self._call("acquire_entry", key, limit, expiry, amount))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """A moving window's start and count."""
        return self._call("get_moving_window", key, limit, expiry)  # type: ignore[no-any-return]

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Take ``amount`` from a sliding-window counter if it has room."""
        return bool(self._call("acquire_sliding_window_entry", key, limit, expiry, amount))

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """A sliding-window counter's two windows."""
        return self._call("get_sliding_window", key, expiry)  # type: ignore[no-any-return]

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Clear a sliding-window counter (both stores)."""
        self.memory.clear_sliding_window(key, expiry)
        self._call("clear_sliding_window", key, expiry)


def init_app(app: Flask) -> None:
    """Point the limiter at Redis with fallback (or memory without REDIS_URL) and start it."""
    from .extensions import limiter

    url = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", SCHEME_PREFIX + url if url else "memory://")
    if url:
        options = dict(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {})
        options.setdefault("timeout", app.config.get("RATELIMIT_REDIS_TIMEOUT", 0.25))
        app.config["RATELIMIT_STORAGE_OPTIONS"] = options
    limiter.init_app(app)
