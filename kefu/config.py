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
        # WeChat answers a request body of at most a few KB; anything near 1 MB is not WeChat.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "TESTING": _bool(os.environ.get("KEFU_TESTING")),
    }
