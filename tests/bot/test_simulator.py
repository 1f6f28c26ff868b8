"""/demo/chat: the bot in a browser for demo machines, through the same dialog as WeChat."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient


def _csrf(client: FlaskClient) -> str:
    html = client.get("/demo/chat").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_off_unless_demo_chat_is_set(client: FlaskClient) -> None:
    assert client.get("/demo/chat").status_code == 404


def test_answers_and_hands_off_like_the_official_account(
    make_app: Callable[..., Flask], kb_loaded: None
) -> None:
    client = make_app(DEMO_CHAT=True).test_client()
    assert "还没有消息" in client.get("/demo/chat").get_data(as_text=True)
    token = _csrf(client)
    page = client.post(
        "/demo/chat", data={"text": "画面是倒的怎么调", "csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "画面是倒的怎么调" in page and "画面翻转" in page
    page = client.post(
        "/demo/chat", data={"text": "转人工", "csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "已转接人工客服" in page and "用户要求人工" in page
    page = client.post(
        "/demo/chat/reset", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "还没有消息" in page
    assert client.post("/demo/chat", data={"text": "你好"}).status_code == 400  # no CSRF token
