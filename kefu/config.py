"""Settings, read from the environment (and a local ``.env``); ``.env.example`` documents each."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_SECRET_KEY = "dev-only-change-me"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _json_object(name: str) -> dict[str, str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{name} must be a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise RuntimeError(f"{name} must be a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def from_environment(instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    default_db = "sqlite:///" + str(Path(instance_path) / "kefu.sqlite3")
    database_url = os.environ.get("DATABASE_URL") or default_db
    # Heroku-style URLs name the driver "postgres"; SQLAlchemy wants psycopg 3 spelled out.
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            database_url = "postgresql+psycopg://" + database_url[len(prefix) :]
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or DEFAULT_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "BRAND_NAME": os.environ.get("BRAND_NAME", "安视科技"),
        "WECHAT_TOKEN": os.environ.get("WECHAT_TOKEN", ""),
        "WECHAT_APP_ID": os.environ.get("WECHAT_APP_ID", ""),
        "WECHAT_APP_SECRET": os.environ.get("WECHAT_APP_SECRET", ""),
        "WECHAT_ENCODING_AES_KEY": os.environ.get("WECHAT_ENCODING_AES_KEY", ""),
        "WECHAT_API_BASE_URL": os.environ.get("WECHAT_API_BASE_URL", ""),
        "WECHAT_HTTP_TIMEOUT": float(os.environ.get("WECHAT_HTTP_TIMEOUT", "3")),
        "WECHAT_KF_ACCOUNT": os.environ.get("WECHAT_KF_ACCOUNT", ""),
        "WECHAT_MENU_KEYS": _json_object("WECHAT_MENU_KEYS"),
        "HANDOFF_IDLE_MINUTES": int(os.environ.get("HANDOFF_IDLE_MINUTES", "30")),
        # Devices with only a ship date start their warranty this many days after shipping,
        # the usual time a unit spends with dealers before it is sold.
        "WARRANTY_SHIP_GRACE_DAYS": int(os.environ.get("WARRANTY_SHIP_GRACE_DAYS", "90")),
        # Manuals, photos and firmware named by a relative path live here (served at /media/).
        "MEDIA_ROOT": os.environ.get("MEDIA_ROOT") or str(Path(instance_path) / "media"),
        # Self-service site. Rate limits share Redis with everything else, so every worker
        # counts the same client; without Redis each process counts on its own.
        "RATELIMIT_SWALLOW_ERRORS": True,  # Redis down: serve pages, do not 500
        "RATELIMIT_HEADERS_ENABLED": True,
        # A moving window: no burst of twice the limit across a window boundary.
        "RATELIMIT_STRATEGY": "moving-window",
        # Public lookups by serial (warranty form, GS1 links): low enough that harvesting serials
        # is impractical, high enough for a person checking a few devices.
        "WARRANTY_LOOKUP_LIMIT": os.environ.get("WARRANTY_LOOKUP_LIMIT", "10/minute;100/day"),
        # Login and registration forms, per client: slows password guessing to a crawl.
        "LOGIN_LIMIT": os.environ.get("LOGIN_LIMIT", "5/minute;50/day"),
        # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted; with 0
        # every client behind a proxy would share one rate-limit bucket.
        "PROXY_FIX_X_FOR": int(os.environ.get("PROXY_FIX_X_FOR", "0")),
        "LANGUAGES": ["zh", "en"],
        "BABEL_DEFAULT_LOCALE": "zh",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(os.environ.get("SESSION_COOKIE_SECURE")),
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(os.environ.get("SESSION_COOKIE_SECURE")),
        "REMEMBER_COOKIE_DURATION": 30 * 24 * 3600,
        # How the device page points people to the official account for help: its name, and
        # optionally its follow link and QR image (media path or URL; long-press works in WeChat).
        "WECHAT_OA_NAME": os.environ.get("WECHAT_OA_NAME", ""),
        "WECHAT_OA_URL": os.environ.get("WECHAT_OA_URL", ""),
        "WECHAT_OA_QR": os.environ.get("WECHAT_OA_QR", ""),
        # /demo/chat: talk to the bot in a browser without WeChat. Demo machines only.
        "DEMO_CHAT": _bool(os.environ.get("DEMO_CHAT")),
        # WeChat answers a request body of at most a few KB; anything near 1 MB is not WeChat.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }
