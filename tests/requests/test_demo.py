"""`flask demo` loads tickets in several states; running it again changes nothing."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from kefu.extensions import db
from kefu.tickets.models import Ticket, ValidationRun


def test_demo_tickets_in_several_states_idempotent(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():  # as `flask` itself does for every command
        first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "6 demo tickets (6 new)" in first.output
    with app.app_context():
        rows = db.session.scalars(select(Ticket)).all()
        states = {t.state for t in rows}
        numbers = {t.number for t in rows}
        assert {"validated", "assigned", "waiting_customer", "resolved", "closed"} <= states
        assert any("serial_unknown" in t.flags for t in rows)
        assert len(db.session.scalars(select(ValidationRun)).all()) == 6
    with app.app_context():
        again = runner.invoke(args=["demo"])
    assert again.exit_code == 0 and "6 demo tickets (0 new)" in again.output
    with app.app_context():
        assert {t.number for t in db.session.scalars(select(Ticket))} == numbers
