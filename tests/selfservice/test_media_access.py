"""Installer-only files reach approved installers only, under names nobody can guess."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from .conftest import Catalog, log_in, make_installer

PRIVATE_RE = re.compile(r'href="(/media/i/[0-9a-f]{32}/as-c3h-install\.pdf)"')


def get(client: FlaskClient, url: str) -> tuple[int, bytes]:
    with client.get(url) as response:
        return response.status_code, response.get_data()


def private_link(client: FlaskClient, catalog: Catalog) -> str:
    match = PRIVATE_RE.search(client.get(f"/d/{catalog.in_warranty.token}").get_data(as_text=True))
    assert match
    return match.group(1)


def test_anonymous_visitors_cannot_fetch_installer_files(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    status, body = get(client, "/media/manuals/as-c3h-install.pdf")
    assert status == 404 and b"install guide" not in body
    log_in(client)
    link = private_link(client, catalog)
    status, body = get(client, link)
    assert status == 200 and body == b"%PDF-1.4 install guide"
    # Even installers do not get it under its plain path (so the name alone is worth nothing).
    assert get(client, "/media/manuals/as-c3h-install.pdf")[0] == 404
    # Logged out, the private link is a 404 like any other.
    anonymous = client.application.test_client()
    assert get(anonymous, link)[0] == 404


def test_private_links_depend_on_the_secret_key_and_the_file(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    log_in(client)
    link = private_link(client, catalog)
    key = link.split("/")[3]
    assert get(client, link.replace(key, "0" * 32))[0] == 404
    assert get(client, link.replace("as-c3h-install.pdf", "as-c3h-user.pdf"))[0] == 404
    from kefu.catalog import media

    with app.app_context():
        assert media.private_key("manuals/as-c3h-install.pdf") == key
        app.config["SECRET_KEY"] = "another-installation"
        assert media.private_key("manuals/as-c3h-install.pdf") != key


def test_pending_installers_and_public_files(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    make_installer(app, status="pending")
    assert get(client, "/media/manuals/as-c3h-user.pdf") == (200, b"%PDF-1.4 user manual")
    assert get(client, "/media/models/as-c3h.jpg")[0] == 200


def test_files_the_catalogue_does_not_publish_are_not_served(
    app: Flask, client: FlaskClient, catalog: Catalog
) -> None:
    from pathlib import Path

    stray = Path(app.config["MEDIA_ROOT"]) / "manuals" / "old-installation.pdf"
    stray.write_bytes(b"%PDF-1.4 withdrawn")
    assert get(client, "/media/manuals/old-installation.pdf")[0] == 404
