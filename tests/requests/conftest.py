"""Fixtures for requests and tickets: the self-service catalogue, jobs run at once, a fake
WeChat API on loopback, and helpers that talk to the bot as a user would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from kefu import dialog
from kefu.extensions import db
from tests.selfservice.conftest import Catalog, app, catalog, client  # noqa: F401
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api


@pytest.fixture(autouse=True)
def _jobs_now(app: Flask, tmp_path: Path) -> None:  # noqa: F811
    """Background jobs run at once (after the commit); proof photos in a temporary folder."""
    app.config["JOBS_EAGER"] = True
    app.config["PROOF_ROOT"] = str(tmp_path / "proofs")


@pytest.fixture
def fake_api(app: Flask) -> Iterator[FakeWeChatApi]:  # noqa: F811
    """The fake WeChat API, which the app's API client talks to."""
    with serve_fake_wechat_api() as api:
        app.config["WECHAT_API_BASE_URL"] = api.url
        yield api


def say(app: Flask, openid: str, text: str) -> str:  # noqa: F811
    """One message through the dialog, committed like the webhook does; the bot's reply."""
    with app.app_context():
        reply = dialog.respond(openid, text)
        db.session.commit()
        return reply.text


def sent_texts(api: FakeWeChatApi, openid: str) -> list[str]:
    """Customer-service messages the fake WeChat received for ``openid``."""
    return [
        call["body"]["text"]["content"]
        for path, call in api.calls
        if path == "/cgi-bin/message/custom/send" and call["body"].get("touser") == openid
    ]
