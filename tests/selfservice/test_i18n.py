"""Chinese first, English on request; the committed English catalogue is complete and compiled."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from .conftest import Catalog, csrf_from

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def test_chinese_by_default_english_by_switch_remembered_by_cookie(
    client: FlaskClient, catalog: Catalog
) -> None:
    url = f"/d/{catalog.in_warranty.token}"
    zh = client.get(url, headers={"Accept-Language": "en-US,en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "在保修期内" in zh and 'href="?lang=en"' in zh
    en = client.get(url + "?lang=en")
    html = en.get_data(as_text=True)
    assert '<html lang="en">' in html and "In warranty" in html and "C3H outdoor camera" in html
    assert "Manuals" in html and "User manual" in html and "在保修期内" not in html
    assert "lang=en" in en.headers["Set-Cookie"]
    # The cookie keeps English on the next page, without ?lang=.
    assert "Warranty check" in client.get("/warranty").get_data(as_text=True)
    back = client.get(url + "?lang=zh").get_data(as_text=True)
    assert "在保修期内" in back
    assert "保修查询" in client.get("/warranty").get_data(as_text=True)


def test_an_unknown_language_falls_back_to_chinese(client: FlaskClient) -> None:
    html = client.get("/warranty?lang=xx").get_data(as_text=True)
    assert "保修查询" in html


def test_error_pages_speak_the_visitors_language(client: FlaskClient) -> None:
    assert "找不到这个页面" in client.get("/d/nothing").get_data(as_text=True)
    assert "Page not found" in client.get("/d/nothing?lang=en").get_data(as_text=True)
    token = csrf_from(client, "/warranty")
    assert token
    expired = client.post("/warranty", data={"serial": "X"})  # no CSRF token
    assert expired.status_code == 400 and "This page has expired" in expired.get_data(as_text=True)


def test_core_messages_follow_the_language(client: FlaskClient, catalog: Catalog) -> None:
    """Messages written in the core in both languages (batch limit) show in the page's one."""
    from .conftest import log_in, make_installer

    make_installer(client.application)
    log_in(client)
    token = csrf_from(client, "/installer/batch?lang=en")
    serials = "\n".join(f"AS2030X{i:06d}" for i in range(101))
    html = client.post("/installer/batch", data={"serials": serials, "csrf_token": token})
    assert "at most 100 serials" in html.get_data(as_text=True)


def _po() -> list[Message]:
    with PO.open("rb") as f:
        return list(read_po(f))


def test_every_page_string_has_an_english_translation() -> None:
    catalog = _po()
    translated = {m.id: m.string for m in catalog if m.id}
    mapping = [
        ("selfservice/**.py", "python"),
        ("console/**.py", "python"),
        ("kefu/accounts.py", "python"),
        ("bot/simulator.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    missing = []
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=mapping, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        if not translated.get(msgid):
            missing.append(msgid)
    assert not missing, f"untranslated (see babel.cfg): {missing}"
    assert not [m.id for m in catalog if m.id and m.fuzzy], "fuzzy entries in messages.po"


def test_the_committed_mo_matches_the_po() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f)
    with MO.open("rb") as f:
        compiled = read_mo(f)
    po = {m.id: m.string for m in catalog if m.id}
    mo = {m.id: m.string for m in compiled if m.id}
    assert po == mo, "run: .venv/bin/pybabel compile -d translations -l en"
