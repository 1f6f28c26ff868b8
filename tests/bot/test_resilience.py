"""Nothing lost: concurrent first messages, the database away or hanging, and the way back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bot import delivery
from kefu import dialog, kb, spool
from kefu.extensions import db
from kefu.models import ChatMessage, Conversation, InboundMessage, Subscriber
from kefu.outbox import OutboxMessage
from tests.conftest import REDIS_TEST_URL, FakeWeChat
from tests.faultproxy import FaultProxy, refused_port

BUSY = dialog.TEXT["busy"]


def _in_lines(app: Flask, openid: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(ChatMessage.text)
                .where(ChatMessage.openid == openid, ChatMessage.direction == "in")
                .order_by(ChatMessage.id)
            )
        )


def _at_once(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in parallel threads released together; their results in order."""
    results: list[object] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_first_messages_at_once_are_both_answered(
    app: Flask, make_app: Callable[..., Flask], kb_loaded: None
) -> None:
    """Two workers get a new user's first two messages at the same moment: both are handled."""
    workers = [make_app(), make_app()]
    senders = [FakeWeChat(w.test_client()) for w in workers]
    for sender in senders:  # each worker has its index loaded, as after start-up
        assert sender.reply(sender.text("o_warm", "你好"))["MsgType"] == "text"
    for n in range(15):
        openid = f"o_race_{n}"
        replies = _at_once(
            lambda o=openid: senders[0].reply(senders[0].text(o, "摄像头配网失败怎么办")),
            lambda o=openid: senders[1].reply(senders[1].text(o, "录像机硬盘不识别")),
        )
        assert all(r and r["MsgType"] == "text" for r in replies), replies  # type: ignore[index]
        assert sorted(_in_lines(app, openid)) == sorted(
            ["摄像头配网失败怎么办", "录像机硬盘不识别"]
        )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Conversation)) == 16


def test_two_follows_at_once_make_one_subscriber(
    app: Flask, make_app: Callable[..., Flask]
) -> None:
    """A follow delivered twice at once (two CreateTimes) greets twice and stores one row."""
    senders = [FakeWeChat(make_app().test_client()) for _ in range(2)]
    replies = _at_once(
        lambda: senders[0].reply(senders[0].event("o_follow", "subscribe", key="qrscene_a")),
        lambda: senders[1].reply(
            senders[1].event("o_follow", "subscribe", key="qrscene_b", create_time=1)
        ),
    )
    assert all(r and r["MsgType"] == "text" for r in replies), replies  # type: ignore[index]
    with app.app_context():
        subscriber = db.session.get(Subscriber, "o_follow")
        assert subscriber is not None and subscriber.scene in {"a", "b"}


def test_an_ordinary_text_message_costs_few_statements(
    app: Flask, make_app: Callable[..., Flask], kb_loaded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round trips per message are throughput: an upsert, one transcript insert, the dedupe row."""
    # The pruning of old records that one message in 200 also does is not what is counted.
    monkeypatch.setattr(delivery, "PRUNE_CHANCE", 0.0)
    worker = make_app(REVISION_CHECK_MS=60_000)
    sender = FakeWeChat(worker.test_client())
    sender.text("o_count", "你好")  # the conversation exists and the index is loaded
    statements: list[str] = []
    transactions: list[str] = []
    with worker.app_context():
        engine = db.engine

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", lambda conn: transactions.append("commit"))
    try:
        reply = sender.reply(sender.text("o_count", "摄像头配网失败怎么办"))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert reply["MsgType"] == "text"
    # INSERT INTO conversations ... ON CONFLICT (the user's row, with what the dialog needs of
    # it), SELECT of the user's previous question, INSERT INTO chat_messages (both lines at
    # once), INSERT INTO inbound_messages ... ON CONFLICT DO NOTHING; no ping, no SELECT of
    # the KB revision, one transaction.
    assert len(statements) <= 4, statements
    assert statements.count("INSERT INTO chat_messages") == 1, statements
    assert transactions == ["commit"]
    assert _in_lines(app, "o_count") == ["你好", "摄像头配网失败怎么办"]


def _pg_url(database_url: str, port: int) -> str:
    return make_url(database_url).set(host="127.0.0.1", port=port).render_as_string(False)


def test_database_refused_gets_a_polite_reply_and_the_message_is_kept(
    make_app: Callable[..., Flask], database_url: str, tmp_path: Path
) -> None:
    worker = make_app(
        SQLALCHEMY_DATABASE_URI=_pg_url(database_url, refused_port()), SPOOL_DIR=str(tmp_path)
    )
    sender = FakeWeChat(worker.test_client())
    started = time.monotonic()
    reply = sender.reply(sender.text("o_down", "摄像头离线怎么办"))
    assert time.monotonic() - started < 5
    assert reply["Content"] == BUSY
    assert spool.count(str(tmp_path)) == 1


@pytest.mark.parametrize("redis_url", [REDIS_TEST_URL, ""], ids=["redis", "no-redis"])
def test_database_black_holed_gets_a_polite_reply_within_5_s(
    make_app: Callable[..., Flask], database_url: str, tmp_path: Path, redis_url: str
) -> None:
    """A server that accepts connections and never answers: connect_timeout, then the reply;
    the messages after it are answered at once (without Redis, nonces live in the database)."""
    with FaultProxy(("127.0.0.1", 1)) as hole:
        hole.mode = "blackhole"
        worker = make_app(
            SQLALCHEMY_DATABASE_URI=_pg_url(database_url, hole.port),
            SPOOL_DIR=str(tmp_path),
            REDIS_URL=redis_url,
        )
        sender = FakeWeChat(worker.test_client())
        started = time.monotonic()
        reply = sender.reply(sender.text("o_hole", "摄像头离线怎么办"))
        assert time.monotonic() - started < 5
        assert reply["Content"] == BUSY
        started = time.monotonic()
        again = sender.reply(sender.text("o_hole", "录像机硬盘不识别"))
        assert time.monotonic() - started < 1
    assert again["Content"] == BUSY
    assert spool.count(str(tmp_path)) == 2


def test_database_hanging_mid_conversation_then_back_loses_nothing(
    app: Flask,
    make_app: Callable[..., Flask],
    database_url: str,
    kb_loaded: None,
    tmp_path: Path,
) -> None:
    """Connections already open stall: the reply still comes in time, and the kept message is
    handled by itself once the database answers again."""
    target = make_url(database_url)
    with FaultProxy((target.host or "127.0.0.1", target.port or 5432)) as proxy:
        worker = make_app(
            SQLALCHEMY_DATABASE_URI=_pg_url(database_url, proxy.port), SPOOL_DIR=str(tmp_path)
        )
        sender = FakeWeChat(worker.test_client())
        assert "配网" in sender.reply(sender.text("o_stall", "摄像头配网失败怎么办"))["Content"]

        proxy.mode = "blackhole"
        started = time.monotonic()
        reply = sender.reply(sender.text("o_stall", "录像机硬盘不识别", msg_id=555001))
        assert time.monotonic() - started < 5
        assert reply["Content"] == BUSY
        assert spool.count(str(tmp_path)) == 1

        # Meanwhile every message is answered at once, without waiting on the database again.
        started = time.monotonic()
        assert sender.reply(sender.text("o_stall", "摄像头离线怎么办"))["Content"] == BUSY
        assert time.monotonic() - started < 1

        proxy.forward()
        deadline = time.monotonic() + 10
        while spool.count(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.1)  # the worker notices by itself and handles what it kept
        _join_replays()
        assert spool.count(str(tmp_path)) == 0
        after = sender.reply(sender.text("o_stall", "你好"))
        assert after["MsgType"] == "text" and after["Content"] != BUSY
        assert {"录像机硬盘不识别", "摄像头离线怎么办"} <= set(_in_lines(app, "o_stall"))
        with app.app_context():
            kept = db.session.scalar(
                select(InboundMessage).where(InboundMessage.dedupe_key == "msg:555001")
            )
            assert kept is not None and kept.reply
            # Its answer goes to the user as a customer-service message.
            late = db.session.scalar(select(OutboxMessage).where(OutboxMessage.ref == "msg:555001"))
            assert late is not None and late.openid == "o_stall" and late.purpose == "late_answer"
        with worker.app_context():
            db.engine.dispose()


def test_replay_is_done_once_even_if_the_message_was_retried(
    app: Flask, make_app: Callable[..., Flask], kb_loaded: None, tmp_path: Path
) -> None:
    """A kept message that was meanwhile handled (a WeChat retry) is not handled twice."""
    worker = make_app(SPOOL_DIR=str(tmp_path))
    sender = FakeWeChat(worker.test_client())
    sender.text("o_twice", "摄像头配网失败怎么办", msg_id=556001)
    from kefu.wechat import parse

    with worker.test_request_context():
        inbound = parse(sender.xml("o_twice", "text", {"Content": "摄像头配网失败怎么办"}, 556001))
        delivery.keep(inbound, "database")
        from bot.webhook import _dispatch

        assert delivery.replay(_dispatch) == 1
    assert _in_lines(app, "o_twice") == ["摄像头配网失败怎么办"]
    assert spool.count(str(tmp_path)) == 0


def _join_replays() -> None:
    for thread in threading.enumerate():
        if thread.name == "kefu-spool-replay":
            thread.join(10)


def test_a_worker_loading_its_index_answers_politely_and_catches_up(
    app: Flask, make_app: Callable[..., Flask], kb_loaded: None, tmp_path: Path
) -> None:
    """Start-up with a large KB: no message waits for the index, /healthz says when it is ready."""
    worker = make_app(SPOOL_DIR=str(tmp_path))
    sender = FakeWeChat(worker.test_client())
    probe = worker.test_client()
    with kb._snapshot_lock:  # the index is still being built (as with 100k entries)
        loading = kb.warm_up(worker)
        health = probe.get("/healthz")
        assert health.status_code == 503 and health.json["index"] == "loading"
        started = time.monotonic()
        reply = sender.reply(sender.text("o_early", "摄像头配网失败怎么办"))
        assert time.monotonic() - started < 5
        assert reply["Content"] == BUSY
    loading.join(30)
    health = probe.get("/healthz")
    assert health.status_code == 200, health.json
    assert health.json == {"status": "ready", "index": "loaded", "database": "ok", "spooled": 1}
    assert "配网" not in sender.reply(sender.text("o_early", "你好"))["Content"]
    _join_replays()
    assert sorted(_in_lines(app, "o_early")) == sorted(["摄像头配网失败怎么办", "你好"])
    assert spool.count(str(tmp_path)) == 0


def test_healthz_is_503_while_the_database_is_away(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    worker = make_app(SQLALCHEMY_DATABASE_URI=_pg_url(database_url, refused_port()))
    health = worker.test_client().get("/healthz")
    assert health.status_code == 503 and health.json["database"] == "unavailable"


def test_a_users_next_message_waits_behind_their_kept_ones(
    app: Flask, make_app: Callable[..., Flask], kb_loaded: None, tmp_path: Path
) -> None:
    """Kept messages are handled before the user's newer ones, in order (a form stays sane)."""
    worker = make_app(SPOOL_DIR=str(tmp_path))
    sender = FakeWeChat(worker.test_client())
    sender.text("o_other", "你好")  # the index is loaded
    from kefu.wechat import parse

    with worker.test_request_context():
        delivery.keep(
            parse(sender.xml("o_order", "text", {"Content": "第一句"}, 557001)), "database"
        )
    reply = sender.reply(sender.text("o_order", "第二句"))
    assert reply["Content"] == BUSY
    _join_replays()
    assert _in_lines(app, "o_order") == ["第一句", "第二句"]
    assert spool.count(str(tmp_path)) == 0
