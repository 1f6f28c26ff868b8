"""Shared fixtures: a PostgreSQL database migrated once per run, Redis, and a fake WeChat sender."""

from __future__ import annotations

import atexit
import hashlib
import os
import random
import shutil
import string
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg
import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text
from werkzeug.test import TestResponse

from kefu import create_app, dbguard, kb
from kefu.catalog import content
from kefu.extensions import db

DATA = Path(__file__).parent / "data"
PG_ADMIN_URL = os.environ.get("KEFU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/15")
WECHAT_TOKEN = "kefu-test-token"
WECHAT_APP_ID = "wx0123456789abcdef"
# 43 characters, as WeChat generates them.
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SPOOL_ROOT = tempfile.mkdtemp(prefix="kefu-test-spool-")
atexit.register(shutil.rmtree, SPOOL_ROOT, True)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, schema built by the Alembic migrations."""
    name = f"kefu_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = (
        PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        + "/"
        + name
    )
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_config(database_url: str, **extra: Any) -> dict[str, Any]:
    """The test configuration: real PostgreSQL and Redis, WeChat credentials of a test account."""
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": REDIS_TEST_URL,
        "WECHAT_TOKEN": WECHAT_TOKEN,
        "WECHAT_APP_ID": WECHAT_APP_ID,
        "WECHAT_APP_SECRET": "test-app-secret",
        "WECHAT_ENCODING_AES_KEY": WECHAT_AES_KEY,
        # Compatible mode, so the plaintext `wechat` fixture and the encrypted `wechat_safe` one
        # both talk to the same app; the safe-mode tests build a safe app with `make_app`.
        "WECHAT_MESSAGE_MODE": "compatible",
        "WECHAT_KF_ACCOUNT": "",
        "WECHAT_MENU_KEYS": {"MENU_HUMAN": "human", "MENU_WIFI": "kb:wifi_setup"},
        "PUBLIC_BASE_URL": "https://kefu.example.com",
        # Pinned, so settings exported in a developer's shell cannot change what the tests see
        # (create_app never reads .env; kefu.wsgi does).
        "DEMO_CHAT": False,
        "PROXY_FIX_X_FOR": 0,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "TIMEZONE": "Asia/Shanghai",
        "INSTALL_WINDOW_DAYS": 180,
        # Messages kept while the database is away: never the checkout's instance/spool.
        "SPOOL_DIR": os.path.join(SPOOL_ROOT, uuid.uuid4().hex[:8]),
    }
    config.update(extra)
    return config


def close_redis(app: Flask) -> None:
    """Close the app's Redis connections (an unclosed socket is a ResourceWarning, an error)."""
    client = app.extensions.pop("kefu.redis", None)
    if client is not None:
        client.close()


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """A fresh app per test; every table is emptied afterwards."""
    app = create_app(make_config(database_url))
    yield app
    with app.app_context():
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()
    close_redis(app)
    with redis_lib.Redis.from_url(REDIS_TEST_URL) as redis_conn:
        redis_conn.flushdb()
    kb.drop_cached_indexes()  # the next test is a new process as far as the index knows
    content.forget()
    dbguard.forget()


@pytest.fixture
def make_app(database_url: str, app: Flask) -> Iterator[Callable[..., Flask]]:
    """Build more apps on the same database (another worker, a restart, other settings)."""
    made: list[Flask] = []

    def factory(**extra: Any) -> Flask:
        made.append(create_app(make_config(database_url, **extra)))
        return made[-1]

    yield factory
    for other in made:
        close_redis(other)
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for ``app``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner for ``app``."""
    return app.test_cli_runner()


@pytest.fixture
def kb_loaded(runner: FlaskCliRunner) -> None:
    """The test knowledge base, imported through the real CLI."""
    result = runner.invoke(args=["kb", "import", str(DATA / "kb_test.jsonl")])
    assert result.exit_code == 0, result.output


class FakeWeChat:
    """Sends messages to ``/wechat`` the way WeChat's servers do: signed, optionally encrypted."""

    def __init__(self, client: FlaskClient, safe_mode: bool = False) -> None:
        self.client = client
        self.safe_mode = safe_mode
        self._next_id = random.randint(10**15, 10**16)
        from wechatpy.crypto import WeChatCrypto  # the tests may use wechatpy directly

        self.crypto = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID)

    @staticmethod
    def sign(*parts: str) -> str:
        """WeChat's SHA1 over the sorted parts."""
        return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()

    def query(self) -> dict[str, str]:
        """Signed query-string parameters for one delivery."""
        timestamp = str(int(time.time()))
        nonce = "".join(random.choices(string.digits, k=10))
        return {
            "signature": self.sign(WECHAT_TOKEN, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "ignored",
        }

    def xml(
        self, openid: str, msg_type: str, fields: dict[str, str | int], msg_id: int | None
    ) -> str:
        """A plaintext message as WeChat sends it."""
        nodes = [
            "<ToUserName><![CDATA[gh_kefu_test]]></ToUserName>",
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
            f"<CreateTime>{fields.pop('CreateTime', int(time.time()))}</CreateTime>",
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        ]
        for key, value in fields.items():
            nodes.append(
                f"<{key}>{value}</{key}>"
                if isinstance(value, int)
                else f"<{key}><![CDATA[{value}]]></{key}>"
            )
        if msg_id is not None:
            nodes.append(f"<MsgId>{msg_id}</MsgId>")
        return "<xml>" + "".join(nodes) + "</xml>"

    def post(self, body: str | bytes, query: dict[str, str] | None = None) -> TestResponse:
        """POST a raw body; encrypted and signed as WeChat would in safe mode."""
        query = dict(query or self.query())
        if self.safe_mode and isinstance(body, str):
            envelope = self.crypto.encrypt_message(body, query["nonce"], query["timestamp"])
            tree = ElementTree.fromstring(envelope)
            query["msg_signature"] = tree.findtext("MsgSignature") or ""
            query["encrypt_type"] = "aes"
            encrypted = tree.findtext("Encrypt")
            body = (
                "<xml><ToUserName><![CDATA[gh_kefu_test]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
            )
        return self.client.post("/wechat", query_string=query, data=body, content_type="text/xml")

    def send(
        self, openid: str, msg_type: str, msg_id: int | None = 0, **fields: str | int
    ) -> TestResponse:
        """Deliver one message or event; ``msg_id=0`` picks a fresh MsgId, ``None`` sends none."""
        if msg_id == 0:
            self._next_id += 1
            msg_id = self._next_id
        return self.post(self.xml(openid, msg_type, dict(fields), msg_id))

    def text(self, openid: str, content: str, msg_id: int = 0) -> TestResponse:
        """A text message."""
        return self.send(openid, "text", msg_id, Content=content)

    def event(
        self, openid: str, event: str, key: str = "", create_time: int | None = None
    ) -> TestResponse:
        """An event (no MsgId)."""
        fields: dict[str, str | int] = {"Event": event}
        if key:
            fields["EventKey"] = key
        if create_time is not None:
            fields["CreateTime"] = create_time
        return self.send(openid, "event", None, **fields)

    def reply(self, response: TestResponse) -> dict[str, str]:
        """The reply's fields (decrypted in safe mode); {} for "success"."""
        body = response.get_data(as_text=True)
        if body in {"", "success"}:
            return {}
        if "<Encrypt>" in body:
            tree = ElementTree.fromstring(body)
            body = self.crypto.decrypt_message(
                body,
                tree.findtext("MsgSignature"),
                tree.findtext("TimeStamp"),
                tree.findtext("Nonce"),
            )
        tree = ElementTree.fromstring(body)
        fields = {child.tag: (child.text or "") for child in tree}
        kf = tree.find("TransInfo/KfAccount")
        if kf is not None:
            fields["KfAccount"] = kf.text or ""
        return fields


@pytest.fixture
def wechat(client: FlaskClient) -> FakeWeChat:
    """A fake WeChat server posting plaintext (plain mode) messages."""
    return FakeWeChat(client)


@pytest.fixture
def wechat_safe(client: FlaskClient) -> FakeWeChat:
    """A fake WeChat server posting encrypted (safe mode) messages."""
    return FakeWeChat(client, safe_mode=True)
