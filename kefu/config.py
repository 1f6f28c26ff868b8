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
        # Extra engine options (tests); the timeouts below are applied by extensions.init_db.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        # WeChat waits 5 s for a reply, so no database access may take near that long: a
        # connection is given up after DB_CONNECT_TIMEOUT seconds, a statement after
        # DB_STATEMENT_TIMEOUT_MS, a wait for a row lock after DB_LOCK_TIMEOUT_MS.
        "DB_CONNECT_TIMEOUT": float(os.environ.get("DB_CONNECT_TIMEOUT", "2")),
        "DB_STATEMENT_TIMEOUT_MS": int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", "3000")),
        "DB_LOCK_TIMEOUT_MS": int(os.environ.get("DB_LOCK_TIMEOUT_MS", "2000")),
        # Seconds of database time a webhook delivery may take in all before its connection is
        # cut and the user told to try again (covers a server that stops answering entirely).
        "DB_REPLY_DEADLINE": float(os.environ.get("DB_REPLY_DEADLINE", "3")),
        # While the database is away, each worker checks this often (seconds) whether it is
        # back; until then messages are answered and kept at once, without waiting on it.
        "DB_PROBE_INTERVAL": float(os.environ.get("DB_PROBE_INTERVAL", "1")),
        # Seconds after which a pooled connection is replaced (below any idle cut-off).
        "DB_POOL_RECYCLE": int(os.environ.get("DB_POOL_RECYCLE", "1800")),
        # Messages that could not be handled (database down, index still loading) are kept
        # here, one JSON line each, and handled when the database answers again.
        "SPOOL_DIR": os.environ.get("SPOOL_DIR") or str(Path(instance_path) / "spool"),
        # How often (ms) a worker asks the database whether the knowledge base or the catalogue
        # changed (its index and device-page content are cached until then).
        "REVISION_CHECK_MS": int(os.environ.get("REVISION_CHECK_MS", "1000")),
        # The saved search index of each KB revision (memory-mapped, shared by the workers).
        "KB_INDEX_DIR": os.environ.get("KB_INDEX_DIR") or str(Path(instance_path) / "kb-index"),
        # Rows per statement in a knowledge-base import (PostgreSQL takes 65,535 parameters).
        "KB_IMPORT_BATCH": int(os.environ.get("KB_IMPORT_BATCH", "2000")),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "BRAND_NAME": os.environ.get("BRAND_NAME", "安视科技"),
        "WECHAT_TOKEN": os.environ.get("WECHAT_TOKEN", ""),
        "WECHAT_APP_ID": os.environ.get("WECHAT_APP_ID", ""),
        "WECHAT_APP_SECRET": os.environ.get("WECHAT_APP_SECRET", ""),
        "WECHAT_ENCODING_AES_KEY": os.environ.get("WECHAT_ENCODING_AES_KEY", ""),
        # 消息加解密方式: plain, compatible or safe. Empty: safe when an EncodingAESKey is set,
        # else plain; compatible (plaintext accepted beside encrypted) is only ever explicit.
        "WECHAT_MESSAGE_MODE": os.environ.get("WECHAT_MESSAGE_MODE", "").strip().lower(),
        # Seconds a signed request URL stays valid; its nonce is remembered for twice that.
        "WECHAT_SIGNATURE_MAX_AGE": int(os.environ.get("WECHAT_SIGNATURE_MAX_AGE", "300")),
        "WECHAT_API_BASE_URL": os.environ.get("WECHAT_API_BASE_URL", ""),
        "WECHAT_HTTP_TIMEOUT": float(os.environ.get("WECHAT_HTTP_TIMEOUT", "3")),
        "WECHAT_KF_ACCOUNT": os.environ.get("WECHAT_KF_ACCOUNT", ""),
        "WECHAT_MENU_KEYS": _json_object("WECHAT_MENU_KEYS"),
        "HANDOFF_IDLE_MINUTES": int(os.environ.get("HANDOFF_IDLE_MINUTES", "30")),
        # Staff console. "console": handoffs wait in kefu's own queue; "wechat_kf": WeChat's
        # customer-service tool takes them (transfer_customer_service), kefu only notifies.
        "HANDOFF_MODE": os.environ.get("HANDOFF_MODE", "console").strip() or "console",
        # Minutes of duty time a waiting conversation may go unclaimed before it is overdue
        # (and the user is told again), and before an offered one moves to the next agent.
        "HANDOFF_PICKUP_MINUTES": int(os.environ.get("HANDOFF_PICKUP_MINUTES", "5")),
        "HANDOFF_REASSIGN_MINUTES": int(os.environ.get("HANDOFF_REASSIGN_MINUTES", "3")),
        # Minutes a ticket routed to an agent may wait for them to take it (接单) before the
        # sweep offers it to the group's next on-duty agent.
        "TICKET_REASSIGN_MINUTES": int(os.environ.get("TICKET_REASSIGN_MINUTES", "30")),
        # When agents are on duty, in TIMEZONE: "09:00-18:00", days 1 (Mon) to 7 (Sun).
        "CONSOLE_DUTY_HOURS": os.environ.get("CONSOLE_DUTY_HOURS", "09:00-21:00"),
        "CONSOLE_DUTY_DAYS": os.environ.get("CONSOLE_DUTY_DAYS", "1-7"),
        # A console session ends after this many idle minutes (and after 12 hours in any case).
        "CONSOLE_SESSION_MINUTES": int(os.environ.get("CONSOLE_SESSION_MINUTES", "120")),
        # Routing rules, JSON list of {"category"|"level"|"role": value, "group": skill group};
        # the first match wins. Empty: the built-in rules (installers to their line, products to
        # their group).
        "CONSOLE_ROUTING": os.environ.get("CONSOLE_ROUTING", ""),
        # WeChat's daily quota of customer-service messages for the account (shown to agents).
        "WECHAT_CS_DAILY_QUOTA": int(os.environ.get("WECHAT_CS_DAILY_QUOTA", "500000")),
        # Devices with only a ship date start their warranty this many days after shipping,
        # the usual time a unit spends with dealers before it is sold.
        "WARRANTY_SHIP_GRACE_DAYS": int(os.environ.get("WARRANTY_SHIP_GRACE_DAYS", "90")),
        # An installer's registered date counts as the warranty start only this many days after
        # shipping at most; a later one is kept, flagged for staff, and not used.
        "INSTALL_WINDOW_DAYS": int(os.environ.get("INSTALL_WINDOW_DAYS", "180")),
        # The maker's calendar: warranty ends, "today" and date pickers are dates here.
        "TIMEZONE": os.environ.get("TIMEZONE", "").strip() or "Asia/Shanghai",
        # Service requests and tickets. Background jobs go to RQ when REDIS_URL is set, else
        # to a thread of the web process; JOBS_EAGER runs them at once (tests).
        "JOBS_EAGER": _bool(os.environ.get("JOBS_EAGER")),
        # Seconds before each retry of a failed job (the number of values is the retry count).
        "JOBS_BACKOFF": [
            int(x) for x in os.environ.get("JOBS_BACKOFF", "5,30,120,600").split(",") if x.strip()
        ],
        # An untouched chat request form is reminded once, then dropped after this many hours.
        "REQUEST_FORM_REMIND_HOURS": float(os.environ.get("REQUEST_FORM_REMIND_HOURS", "2")),
        "REQUEST_FORM_IDLE_HOURS": float(os.environ.get("REQUEST_FORM_IDLE_HOURS", "24")),
        # A request for the same device within this many days of resolution reopens the ticket.
        "TICKET_REOPEN_DAYS": int(os.environ.get("TICKET_REOPEN_DAYS", "14")),
        # SLA clock: working hours and ISO weekdays in TIMEZONE; targets in business hours as
        # JSON {"priority": [first response, resolution]}, plus extra hours per level.
        "SLA_BUSINESS_HOURS": os.environ.get("SLA_BUSINESS_HOURS", "09:00-18:00"),
        "SLA_BUSINESS_DAYS": os.environ.get("SLA_BUSINESS_DAYS", "1-5"),
        "SLA_TARGETS": os.environ.get("SLA_TARGETS", ""),
        "SLA_LEVEL_EXTRA_HOURS": os.environ.get("SLA_LEVEL_EXTRA_HOURS", ""),
        # Risk flag: this many requests from one phone within RISK_PHONE_DAYS.
        "RISK_PHONE_REQUESTS": int(os.environ.get("RISK_PHONE_REQUESTS", "3")),
        "RISK_PHONE_DAYS": int(os.environ.get("RISK_PHONE_DAYS", "30")),
        # Proof-of-purchase photos: stored here (never under MEDIA_ROOT), with upload caps.
        "PROOF_ROOT": os.environ.get("PROOF_ROOT") or str(Path(instance_path) / "proofs"),
        # Photos users send while an agent owns the conversation (never under MEDIA_ROOT).
        "CHAT_PHOTO_ROOT": os.environ.get("CHAT_PHOTO_ROOT")
        or str(Path(instance_path) / "chat-photos"),
        "PROOF_MAX_BYTES": int(os.environ.get("PROOF_MAX_BYTES", str(10 * 1024 * 1024))),
        "PROOF_MAX_PIXELS": int(os.environ.get("PROOF_MAX_PIXELS", "40000000")),
        "REQUEST_SUBMIT_LIMIT": os.environ.get("REQUEST_SUBMIT_LIMIT", "10/hour;30/day"),
        # Video guidance: minutes a link can be used to join; STUN and TURN URLs (comma
        # separated); coturn's static-auth-secret and the lifetime of the credentials kefu
        # issues; whether calls are recorded (the customer must agree); the largest clip.
        "VIDEO_LINK_MINUTES": int(os.environ.get("VIDEO_LINK_MINUTES", "10")),
        "VIDEO_STUN_URLS": os.environ.get("VIDEO_STUN_URLS", ""),
        "VIDEO_TURN_URLS": os.environ.get("VIDEO_TURN_URLS", ""),
        "VIDEO_TURN_SECRET": os.environ.get("VIDEO_TURN_SECRET", ""),
        "VIDEO_TURN_TTL": int(os.environ.get("VIDEO_TURN_TTL", "7200")),
        "VIDEO_RECORDING": _bool(os.environ.get("VIDEO_RECORDING")),
        "VIDEO_UPLOAD_MAX_BYTES": int(
            os.environ.get("VIDEO_UPLOAD_MAX_BYTES", str(50 * 1024 * 1024))
        ),
        # Manuals, photos and firmware named by a relative path live here (served at /media/).
        "MEDIA_ROOT": os.environ.get("MEDIA_ROOT") or str(Path(instance_path) / "media"),
        # Self-service site. Rate limits share Redis with everything else, so every worker
        # counts the same client; without Redis, or while it is down or slow (kefu.ratelimit),
        # each process counts on its own with the same limits.
        "RATELIMIT_SWALLOW_ERRORS": True,  # an unexpected limiter fault: serve pages, do not 500
        # Seconds a rate-limit check waits for Redis before counting in memory instead.
        "RATELIMIT_REDIS_TIMEOUT": float(os.environ.get("RATELIMIT_REDIS_TIMEOUT", "0.25")),
        "RATELIMIT_HEADERS_ENABLED": True,
        # A moving window: no burst of twice the limit across a window boundary.
        "RATELIMIT_STRATEGY": "moving-window",
        # Public lookups by serial (warranty form, GS1 links): low enough that harvesting serials
        # is impractical, high enough for a person checking a few devices.
        "WARRANTY_LOOKUP_LIMIT": os.environ.get("WARRANTY_LOOKUP_LIMIT", "10/minute;100/day"),
        # Login and registration forms, per client: slows password guessing to a crawl.
        "LOGIN_LIMIT": os.environ.get("LOGIN_LIMIT", "5/minute;50/day"),
        # Batch lookups (up to 100 serials each; the CSV download counts too), per account.
        "BATCH_LOOKUP_LIMIT": os.environ.get("BATCH_LOOKUP_LIMIT", "30/hour;200/day"),
        # WeChat's OAuth callback, per client: each visit makes an outbound call to WeChat.
        "OAUTH_CALLBACK_LIMIT": os.environ.get("OAUTH_CALLBACK_LIMIT", "10/minute;100/day"),
        # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted; with 0
        # every client behind a proxy would share one rate-limit bucket. Only behind your own
        # proxy: without one, anyone could name any address and escape the rate limits.
        "PROXY_FIX_X_FOR": int(os.environ.get("PROXY_FIX_X_FOR", "0")),
        "LANGUAGES": ["zh", "en"],
        "BABEL_DEFAULT_LOCALE": "zh",
        # Device pages send no Referer at all (they are capability links), so their forms cannot
        # pass Flask-WTF's HTTPS Referer check; the CSRF token and SameSite cookies remain.
        "WTF_CSRF_SSL_STRICT": False,
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
