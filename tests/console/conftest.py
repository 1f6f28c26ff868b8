"""Console fixtures: staff accounts, a signed-in agent, the fake WeChat API, and handoffs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kefu import jobs, staff
from kefu.extensions import db
from kefu.models import Handoff
from tests.conftest import FakeWeChat
from tests.selfservice.conftest import csrf_from
from tests.wechat_api import FakeWeChatApi, serve_fake_wechat_api

PASSWORD = "agent-pass-123"
SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def app(app: Flask) -> Iterator[Flask]:
    """Agents on duty around the clock (unless a test says otherwise); background jobs run at
    once after the commit; WeChat's API is the fake one on loopback, never the real one."""
    app.config.update(CONSOLE_DUTY_HOURS="00:00-24:00", CONSOLE_DUTY_DAYS="1-7", JOBS_EAGER=True)
    with serve_fake_wechat_api() as api:
        app.config["WECHAT_API_BASE_URL"] = api.url
        app.extensions["test.wechat_api"] = api
        yield app


def make_staff(
    app: Flask,
    username: str,
    role: str = "agent",
    groups: list[str] | None = None,
    on_duty: bool = True,
) -> int:
    """Create an account directly (the CLI has its own tests); return its id."""
    with app.app_context():
        member = staff.create(username, PASSWORD, role, username.title(), groups)
        member.on_duty = on_duty
        db.session.commit()
        return member.id


def new_client(app: Flask) -> FlaskClient:
    """A test client with an address of its own (rate limits are per address)."""
    client = app.test_client()
    octets = ".".join(str(secrets.randbelow(256)) for _ in range(3))
    client.environ_base["REMOTE_ADDR"] = f"10.{octets}"
    return client


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person would."""
    token = csrf_from(client, "/console/login")
    response = client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def agent(app: Flask) -> int:
    """An on-duty agent, "alice", in the general group."""
    return make_staff(app, "alice")


@pytest.fixture
def console(app: Flask, agent: int) -> FlaskClient:
    """A browser signed in to the console as alice."""
    client = new_client(app)
    sign_in(client, "alice")
    return client


@pytest.fixture
def wechat_api(app: Flask) -> FakeWeChatApi:
    """The fake WeChat API on loopback that receives the app's customer-service messages."""
    return app.extensions["test.wechat_api"]  # type: ignore[no-any-return]


def sent_texts(api: FakeWeChatApi, openid: str | None = None) -> list[str]:
    """Texts the fake WeChat API received as customer-service messages."""
    return [
        body["body"]["text"]["content"]
        for path, body in api.calls
        if path == SEND and (openid is None or body["body"].get("touser") == openid)
    ]


def deliver(app: Flask) -> None:
    """Let background jobs finish (they run at once after each commit in these tests)."""
    jobs.wait_for_threads()


@dataclass
class Waiting:
    """A user handed to a person, as the console sees them."""

    openid: str
    handoff_id: int


def hand_off(app: Flask, wechat: FakeWeChat, openid: str = "o_user1") -> Waiting:
    """The user taps the menu's "talk to a person" button, then describes the problem.

    The menu path does not depend on understanding free text (tests of that path type 转人工).
    """
    assert wechat.event(openid, "CLICK", key="MENU_HUMAN").status_code == 200
    response = wechat.text(openid, "你好，我的摄像头一直离线")
    assert response.get_data(as_text=True) == "success"  # the bot stays quiet while waiting
    with app.app_context():
        handoff_id = db.session.scalar(
            select(Handoff.id).where(Handoff.openid == openid).order_by(Handoff.id.desc())
        )
    assert handoff_id is not None
    return Waiting(openid, handoff_id)


def form_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the page's forms."""
    return csrf_from(client, url)


# The self-service catalogue (devices in every warranty state) serves the ticket tests too.
from tests.selfservice.conftest import Catalog, catalog  # noqa: E402, F401
