"""Background jobs: RQ when Redis is configured (drained here, or run by `flask worker`), a
thread of the web process without Redis."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from kefu import jobs, outbox
from kefu.extensions import db
from tests.wechat_api import FakeWeChatApi

from .conftest import sent_texts


def test_with_redis_jobs_wait_in_rq_until_a_worker_runs_them(
    app: Flask, fake_api: FakeWeChatApi
) -> None:
    app.config["JOBS_EAGER"] = False
    with app.app_context():
        outbox.enqueue_text("o_rq", "排队中", purpose="test")
        db.session.commit()
    assert sent_texts(fake_api, "o_rq") == []
    assert jobs.drain(app) == 1
    assert sent_texts(fake_api, "o_rq") == ["排队中"]


def test_the_worker_command_runs_queued_jobs(app: Flask, fake_api: FakeWeChatApi) -> None:
    app.config["JOBS_EAGER"] = False
    with app.app_context():
        outbox.enqueue_text("o_cli", "后台发送", purpose="test")
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert sent_texts(fake_api, "o_cli") == ["后台发送"]


def test_without_redis_jobs_run_in_a_thread(app: Flask, fake_api: FakeWeChatApi) -> None:
    app.config.update(JOBS_EAGER=False, REDIS_URL="")
    with app.app_context():
        message_id = outbox.enqueue_text("o_thread", "线程发送", purpose="test").id
        db.session.commit()
    jobs.wait_for_threads()
    assert sent_texts(fake_api, "o_thread") == ["线程发送"]
    with app.app_context():
        status = db.session.scalar(
            select(outbox.OutboxMessage.status).where(outbox.OutboxMessage.id == message_id)
        )
        assert status == "sent"
    result = app.test_cli_runner().invoke(args=["worker"])
    assert result.exit_code != 0 and "REDIS_URL" in result.output


def test_rq_retries_a_transient_failure(app: Flask, fake_api: FakeWeChatApi) -> None:
    app.config.update(JOBS_EAGER=False, JOBS_BACKOFF=[0])
    fake_api.errors["/cgi-bin/message/custom/send"] = [-1]  # WeChat busy, once
    with app.app_context():
        message_id = outbox.enqueue_text("o_retry", "重试", purpose="test").id
        db.session.commit()
    jobs.drain(app)
    jobs.drain(app)
    with app.app_context():
        row = db.session.get(outbox.OutboxMessage, message_id)
        assert row.status == "sent" and row.attempts == 2
