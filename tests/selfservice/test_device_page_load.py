"""The device page loads its model's content once per model version, not on every page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from kefu.catalog.models import Manual
from kefu.extensions import db

from .conftest import Catalog


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    """The SQL statements run inside the block."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()[:4]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_second_device_of_a_model_costs_one_query(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    app.config["REVISION_CHECK_MS"] = 60_000
    assert client.get(f"/d/{catalog.in_warranty.token}").status_code == 200
    with counted(app) as statements:
        html = client.get(f"/d/{catalog.ship_only.token}").get_data(as_text=True)
    assert "用户手册" in html and "V5.7.3" in html and "摄像头离线怎么办？" in html
    # The device with its model and series; manuals, videos, firmware and FAQ come from memory.
    assert len(statements) == 1, statements


def test_a_catalogue_edit_shows_on_the_next_page(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    app.config["REVISION_CHECK_MS"] = 60_000
    assert "用户手册" in client.get(f"/d/{catalog.in_warranty.token}").get_data(as_text=True)
    with app.app_context():
        manual = db.session.scalars(select(Manual).where(Manual.title == "用户手册")).one()
        manual.title = "用户手册（第二版）"
        db.session.commit()
    html = client.get(f"/d/{catalog.ship_only.token}").get_data(as_text=True)
    assert "用户手册（第二版）" in html
