"""/api/v1: bearer tokens or the console session, conversations and tickets, as documented."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from kefu import tickets
from kefu.extensions import db
from kefu.models import Handoff
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import SEND, Catalog, hand_off, new_client, sent_texts

SERIAL = "AS2024C3H000001"


def token_for(runner: FlaskCliRunner, username: str = "alice") -> dict[str, str]:
    """An Authorization header with a fresh token from the CLI."""
    token = runner.invoke(args=["staff", "token", username]).output.strip()
    return {"Authorization": f"Bearer {token}"}


def test_401_without_a_token_or_with_a_revoked_one(
    app: Flask, runner: FlaskCliRunner, agent: int
) -> None:
    client = new_client(app)
    for path in ("/api/v1/conversations", "/api/v1/tickets", "/api/v1/conversations/1"):
        response = client.get(path)
        assert response.status_code == 401 and response.get_json()["error"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (
        client.get("/api/v1/tickets", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    headers = token_for(runner)
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    runner.invoke(args=["staff", "token", "alice", "--revoke"])
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401


def test_conversations_list_read_reply_and_close(
    app: Flask, runner: FlaskCliRunner, wechat: FakeWeChat, agent: int, wechat_api: FakeWeChatApi
) -> None:
    headers = token_for(runner)
    client = new_client(app)
    waiting = hand_off(app, wechat)
    listed = client.get("/api/v1/conversations?status=waiting", headers=headers).get_json()
    [row] = listed["conversations"]
    assert row["id"] == waiting.handoff_id and row["reason"] == "menu"
    assert row["openid"] == waiting.openid and row["waiting_since"] and row["last_message"]
    assert client.get("/api/v1/conversations?status=open", headers=headers).get_json() == {
        "conversations": []
    }
    assert client.get("/api/v1/conversations?status=bogus", headers=headers).status_code == 400
    one = client.get(f"/api/v1/conversations/{waiting.handoff_id}", headers=headers).get_json()
    assert [m["from"] for m in one["messages"]][:2] == ["user", "bot"]
    sent = client.post(
        f"/api/v1/conversations/{waiting.handoff_id}/messages",
        headers=headers,
        json={"text": "您好，这里是客服"},
    )
    assert sent.status_code == 201 and sent.get_json()["from"] == "agent"
    assert sent_texts(wechat_api, waiting.openid) == ["您好，这里是客服"]
    assert (
        client.get("/api/v1/conversations?status=open", headers=headers).get_json()[
            "conversations"
        ][0]["id"]
        == waiting.handoff_id
    )
    bad = client.post(
        f"/api/v1/conversations/{waiting.handoff_id}/messages", headers=headers, json={"txt": "x"}
    )
    assert bad.status_code == 400
    closed = client.post(f"/api/v1/conversations/{waiting.handoff_id}/close", headers=headers)
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    again = client.post(f"/api/v1/conversations/{waiting.handoff_id}/close", headers=headers)
    assert again.status_code == 409
    assert client.get("/api/v1/conversations/99999", headers=headers).status_code == 404
    assert [
        c["id"]
        for c in client.get("/api/v1/conversations?status=closed", headers=headers).get_json()[
            "conversations"
        ]
    ] == [waiting.handoff_id]


def test_45015_comes_back_in_the_api_too(
    app: Flask, runner: FlaskCliRunner, wechat: FakeWeChat, agent: int, wechat_api: FakeWeChatApi
) -> None:
    headers = token_for(runner)
    client = new_client(app)
    waiting = hand_off(app, wechat)
    wechat_api.errors[SEND] = [45015]
    client.post(
        f"/api/v1/conversations/{waiting.handoff_id}/messages",
        headers=headers,
        json={"text": "还在吗"},
    )
    messages = client.get(
        f"/api/v1/conversations/{waiting.handoff_id}", headers=headers
    ).get_json()["messages"]
    [mine] = [m for m in messages if m["from"] == "agent"]
    assert mine["delivery"] == "final" and mine["error_code"] == 45015


def test_tickets_list_read_patch_message_and_note(
    app: Flask,
    runner: FlaskCliRunner,
    agent: int,
    catalog: Catalog,
    wechat: FakeWeChat,
    wechat_api: FakeWeChatApi,
) -> None:
    headers = token_for(runner)
    client = new_client(app)
    wechat.event("o_api", "CLICK", key="OTHER")  # the user was here: inside the 48-hour window
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid="o_api",
            serial=SERIAL,
            model_code="AS-C3H",
            fault="画面发黑",
        )
        number = ticket.number
        db.session.commit()
    listed = client.get("/api/v1/tickets?state=new", headers=headers).get_json()["tickets"]
    assert [t["number"] for t in listed] == [number]
    assert client.get("/api/v1/tickets?state=wrong", headers=headers).status_code == 400
    one = client.get(f"/api/v1/tickets/{number}", headers=headers).get_json()
    assert one["state"] == "new" and "validation" in one and one["serial"] == SERIAL
    need_note = client.patch(f"/api/v1/tickets/{number}", headers=headers, json={"level": "L3"})
    assert need_note.status_code == 409 and "note" in need_note.get_json()["message"]
    patched = client.patch(
        f"/api/v1/tickets/{number}",
        headers=headers,
        json={"level": "L3", "note": "需要专家", "assignee": "alice", "priority": "high"},
    )
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["level"] == "L3" and body["assignee"] == "Alice" and body["priority"] == "high"
    assert body["state"] == "assigned"
    msg = client.post(
        f"/api/v1/tickets/{number}/messages",
        headers=headers,
        json={"text": "请问设备现在还离线吗？"},
    )
    assert msg.status_code == 201 and msg.get_json()["sent"] is True
    assert any("请问设备现在还离线吗？" in t for t in sent_texts(wechat_api, "o_api"))
    note = client.post(
        f"/api/v1/tickets/{number}/notes", headers=headers, json={"text": "客户下午有空"}
    )
    assert note.status_code == 201
    full = client.get(f"/api/v1/tickets/{number}", headers=headers).get_json()
    assert [n["text"] for n in full["notes"]] == ["客户下午有空"]
    resolved = client.patch(
        f"/api/v1/tickets/{number}",
        headers=headers,
        json={"state": "resolved", "note": "已更换电源"},
    )
    assert resolved.get_json()["state"] == "resolved"
    assert any("请为本次服务打分" in t for t in sent_texts(wechat_api, "o_api"))
    assert (
        client.patch(
            f"/api/v1/tickets/{number}", headers=headers, json={"colour": "red"}
        ).status_code
        == 400
    )
    assert client.get("/api/v1/tickets/KF-20260101-0000-0", headers=headers).status_code == 404


def test_the_console_session_works_with_its_csrf_token(
    app: Flask, console: FlaskClient, wechat: FakeWeChat
) -> None:
    waiting = hand_off(app, wechat)
    assert console.get("/api/v1/conversations").status_code == 200
    refused = console.post(f"/api/v1/conversations/{waiting.handoff_id}/close")
    assert refused.status_code == 400 and refused.get_json()["error"] == "csrf"
    page = console.get("/console/").get_data(as_text=True)
    token = page.split('data-csrf="', 1)[1].split('"', 1)[0]
    ok = console.post(
        f"/api/v1/conversations/{waiting.handoff_id}/close", headers={"X-CSRFToken": token}
    )
    assert ok.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Handoff.status)) == "closed"


def test_the_api_is_described_by_an_openapi_document(app: Flask) -> None:
    doc = new_client(app).get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert {
        "/conversations",
        "/conversations/{id}/messages",
        "/tickets/{number}",
        "/tickets/{number}/notes",
    } <= set(doc["paths"])
    assert "patch" in doc["paths"]["/tickets/{number}"]
