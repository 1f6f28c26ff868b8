"""Public warranty lookup and GS1 Digital Link: useful to owners, useless for harvesting."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from .conftest import GTIN, Catalog, csrf_from


def lookup(client: FlaskClient, serial: str, token: str | None = None) -> tuple[int, str]:
    token = token or csrf_from(client, "/warranty")
    response = client.post("/warranty", data={"serial": serial, "csrf_token": token})
    return response.status_code, response.get_data(as_text=True)


def result_of(html: str) -> str:
    return html[html.index('<section class="card result"') : html.index("</main>")]


def test_lookup_shows_model_status_and_end_date_only(client: FlaskClient, catalog: Catalog) -> None:
    status, html = lookup(client, " as2019c3h000002 ")  # as people type it
    assert status == 200
    result = result_of(html)
    assert "C3H 室外摄像头" in result and "已过保修期" in result and "2021-02-28" in result
    # Nothing about the owner or the sale: no purchase date, dealer, basis or start date.
    for private in ("2019-03-01", "宁波视安商贸", "购买凭证", "2019-01-10"):
        assert private not in html, private
    status, html = lookup(client, "AS2024C3H000001")
    assert "在保修期内" in result_of(html) and "杭州安居电子" not in html


def test_unknown_and_malformed_serials_get_one_generic_answer(
    client: FlaskClient, catalog: Catalog
) -> None:
    token = csrf_from(client, "/warranty")
    answers = {
        result_of(lookup(client, s, token)[1]).replace(s, "")
        for s in ("AS2030X000000", "nonsense!", "A" * 64)
    }
    assert len(answers) == 1
    assert "没有找到这个序列号的保修信息" in answers.pop()


def test_lookup_is_rate_limited_per_client(client: FlaskClient, catalog: Catalog) -> None:
    token = csrf_from(client, "/warranty")
    statuses = [lookup(client, f"AS2030X{i:06d}", token)[0] for i in range(10)]
    assert statuses == [200] * 10
    status, html = lookup(client, "AS2024C3H000001", token)
    assert status == 429 and "查询太频繁" in html and "C3H" not in html
    # Reading the form does not count; another client still has its allowance.
    assert client.get("/warranty").status_code == 200
    other = client.post(
        "/warranty",
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
        data={"serial": "AS2024C3H000001", "csrf_token": token},
    )
    assert other.status_code == 200 and "C3H" in other.get_data(as_text=True)


def test_gs1_links_share_the_lookup_allowance(client: FlaskClient, catalog: Catalog) -> None:
    token = csrf_from(client, "/warranty")
    for i in range(9):
        assert lookup(client, f"AS2030X{i:06d}", token)[0] == 200
    assert client.get(f"/01/{GTIN}/21/AS2024C3H000001").status_code == 200
    assert client.get(f"/01/{GTIN}/21/AS2024C3H000001").status_code == 429


def test_rate_limit_page_in_english(client: FlaskClient, catalog: Catalog) -> None:
    token = csrf_from(client, "/warranty?lang=en")
    for i in range(10):
        lookup(client, f"AS2030X{i:06d}", token)
    status, html = lookup(client, "AS2030X999999", token)
    assert status == 429 and "Too many requests" in html


def test_gs1_digital_link_resolves_to_the_device_page(
    client: FlaskClient, catalog: Catalog
) -> None:
    base = f"/01/{GTIN}/21/AS2024C3H000001"
    page = client.get(base)
    assert page.status_code == 200 and "C3H 室外摄像头" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "private, no-store"
    # A shorter GTIN-13 names the same trade item.
    assert client.get(f"/01/{GTIN[1:]}/21/AS2024C3H000001").status_code == 200
    instructions = client.get(base + "?linkType=gs1:instructions")
    assert instructions.status_code == 307
    assert instructions.headers["Location"] == "/media/manuals/as-c3h-user.pdf"
    faqs = client.get(base + "?linkType=gs1:faqs")
    assert faqs.status_code == 303 and faqs.headers["Location"] == base + "#faq"
    support = client.get(base + "?linkType=https://gs1.org/voc/support")
    assert support.headers["Location"] == base + "#help"
    assert client.get(base + "?linkType=gs1:pip").status_code == 200
    assert client.get(base + "?linkType=gs1:somethingElse").status_code == 200


def test_gs1_unknowns_are_indistinguishable_404s(client: FlaskClient, catalog: Catalog) -> None:
    wrong_check = GTIN[:-1] + str((int(GTIN[-1]) + 1) % 10)
    bodies = set()
    for path in (
        f"/01/{wrong_check}/21/AS2024C3H000001",  # bad check digit
        f"/01/{GTIN}/21/AS2099C3H999999",  # unknown serial
        "/01/00000000000000/21/AS2024C3H000001",  # valid GTIN, not this device's
        f"/01/{GTIN}/21/AS2019C3H000002",  # real serial recorded without a GTIN
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        bodies.add(response.get_data())
    assert len(bodies) == 1
    assert client.get("/d/unknown-token").get_data() in bodies


def test_gs1_page_is_model_level_even_for_an_installer(
    app: Flask, client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    from .conftest import log_in

    # Anyone can build a Digital Link from the serial on a box: it is not a capability link.
    log_in(client)
    html = client.get(f"/01/{GTIN}/21/AS2024C3H000001").get_data(as_text=True)
    assert "C3H 室外摄像头" in html and "在保修期内" in html and "用户手册" in html
    for private in (
        'id="installer"',
        "杭州安居电子",
        catalog.in_warranty.token,
        "登记安装",
        "安装指南（施工版）",
        "购买凭证日期",
    ):
        assert private not in html, private
