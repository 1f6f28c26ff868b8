"""Tickets routed to an agent wait for them to take it (接单), and move on when nobody does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kefu import handoffs, tickets
from kefu.audit import AuditEntry
from kefu.extensions import db
from kefu.staff import Staff
from kefu.tickets import Ticket

from .conftest import form_token, make_staff, new_client, sign_in


def new_ticket(app: Flask, serial: str = "AS2024C3H000009") -> str:
    """A ticket the robot opened, waiting in the queue without an assignee."""
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid=None,
            serial=serial,
            model_code="AS-C3H",
            fault="夜视不亮",
        )
        db.session.commit()
        return ticket.number


def audit_of(number: str, action: str) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_id == number, AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
    )


def test_an_untaken_ticket_moves_to_the_next_on_duty_agent_and_the_log_says_so(
    app: Flask, agent: int
) -> None:
    bob = make_staff(app, "bob")
    make_staff(app, "carol", on_duty=False)  # off duty: never offered
    app.config["TICKET_REASSIGN_MINUTES"] = 20
    number = new_ticket(app)
    start = datetime.now(UTC)
    with app.app_context():
        assert handoffs.sweep(start)["tickets_routed"] == 1
        db.session.commit()
        first = tickets.by_number(number).assignee_id
        assert first in {agent, bob}
        # Not yet: the offer is only 19 minutes old.
        assert handoffs.sweep(start + timedelta(minutes=19))["tickets_reassigned"] == 0
        db.session.commit()
        later = start + timedelta(minutes=20)
        assert handoffs.sweep(later)["tickets_reassigned"] == 1
        db.session.commit()
        ticket = tickets.by_number(number)
        second = ticket.assignee_id
        assert second == ({agent, bob} - {first}).pop()
        assert ticket.state == "new" and ticket.first_response_at is None
        assert ticket.offered_at == later  # the new agent gets the full time
        [moved] = audit_of(number, "ticket.reassign")
        assert moved.actor == "system"
        assert moved.before == {"assignee": first} and moved.after == {"assignee": second}
        # Nobody takes it: it goes back round to the first agent.
        assert handoffs.sweep(later + timedelta(minutes=20))["tickets_reassigned"] == 1
        db.session.commit()
        assert tickets.by_number(number).assignee_id == first


def test_taking_the_ticket_is_its_first_response_and_stops_the_moving(
    app: Flask, agent: int
) -> None:
    make_staff(app, "bob")
    number = new_ticket(app)
    with app.app_context():
        handoffs.sweep(datetime.now(UTC))
        db.session.commit()
        owner = db.session.get(Ticket, tickets.by_number(number).id).assignee_id
        username = "alice" if owner == agent else "bob"
    client = new_client(app)
    sign_in(client, username)
    url = f"/console/t/{number}"
    page = client.get(url).get_data(as_text=True)
    assert "等待接单" in page and "接单" in page
    assert "待接单" in client.get("/console/tickets?assignee=me").get_data(as_text=True)
    taken = client.post(
        f"{url}/take", data={"csrf_token": form_token(client, url)}, follow_redirects=True
    )
    assert "已接单" in taken.get_data(as_text=True)
    with app.app_context():
        ticket = tickets.by_number(number)
        assert ticket.state == "assigned" and ticket.assignee_id == owner
        assert ticket.offered_at is None and ticket.first_response_at is not None
        assert [e.actor for e in audit_of(number, "ticket.take")] == [f"staff:{username}"]
        later = datetime.now(UTC) + timedelta(minutes=app.config["TICKET_REASSIGN_MINUTES"] + 1)
        assert handoffs.sweep(later)["tickets_reassigned"] == 0
        db.session.commit()
        assert tickets.by_number(number).assignee_id == owner


def test_working_an_offered_ticket_takes_it_and_a_colleagues_assignment_is_an_offer(
    app: Flask, console: FlaskClient, agent: int
) -> None:
    bob = make_staff(app, "bob")
    number = new_ticket(app)
    url = f"/console/t/{number}"
    token = form_token(console, url)
    # Alice gives it to Bob: Bob has to take it.
    console.post(f"{url}/assign", data={"csrf_token": token, "staff_id": str(bob)})
    with app.app_context():
        ticket = tickets.by_number(number)
        assert ticket.assignee_id == bob and ticket.offered_at is not None
        assert ticket.state == "new" and ticket.first_response_at is None
    other = new_client(app)
    sign_in(other, "bob")
    other.post(f"{url}/note", data={"csrf_token": form_token(other, url), "note": "我来看看这个"})
    with app.app_context():
        ticket = tickets.by_number(number)
        assert ticket.offered_at is None and ticket.state == "assigned"
    # The API: the agent's PATCH of a ticket offered to them takes it too.
    number2 = new_ticket(app, "AS2024C3H000010")
    with app.app_context():
        ticket = tickets.by_number(number2)
        handoffs.offer_ticket(ticket, db.session.get(Staff, bob), "system", datetime.now(UTC))
        db.session.commit()
    patched = other.patch(
        f"/api/v1/tickets/{number2}",
        json={"state": "assigned"},
        headers={"X-CSRFToken": form_token(other, url)},
    )
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["offered_at"] is None
    with app.app_context():
        ticket = tickets.by_number(number2)
        assert ticket.state == "assigned" and ticket.first_response_at is not None
