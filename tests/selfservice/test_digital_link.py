"""GS1 resolver conformance: the resolver description and linksets (RFC 9264)."""

from __future__ import annotations

from flask.testing import FlaskClient

from .conftest import GTIN, Catalog

LINK = f"/01/{GTIN}/21/AS2024C3H000001"
VOC = "https://gs1.org/voc/"


def test_well_known_resolver_description(client: FlaskClient) -> None:
    response = client.get("/.well-known/gs1resolver")
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    assert data["resolverRoot"] == "https://kefu.example.com"
    assert data["supportedPrimaryKeys"] == ["01"]
    assert {"namespace": VOC, "prefix": "gs1:"} in data["supportedLinkType"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_linkset_lists_model_level_links_only(client: FlaskClient, catalog: Catalog) -> None:
    for response in (
        client.get(LINK + "?linkType=linkset"),
        client.get(LINK, headers={"Accept": "application/linkset+json"}),
    ):
        assert response.status_code == 200 and response.mimetype == "application/linkset+json"
        (links,) = response.get_json()["linkset"]
        page = "https://kefu.example.com" + LINK
        assert links["anchor"] == page
        assert links[VOC + "pip"][0]["href"] == page
        assert links[VOC + "defaultLink"][0]["href"] == page
        assert links[VOC + "faqs"][0]["href"] == page + "#faq"
        instructions = [link["href"] for link in links[VOC + "instructions"]]
        assert instructions == ["https://kefu.example.com/media/manuals/as-c3h-user.pdf"]
        videos = [link["href"] for link in links[VOC + "relatedVideo"]]
        assert videos == ["https://cdn.example.com/c3h.mp4"]
        text = response.get_data(as_text=True)
        for private in (catalog.in_warranty.token, "杭州安居电子", "install", "pole.mp4"):
            assert private not in text, private


def test_every_answer_points_at_its_linkset(client: FlaskClient, catalog: Catalog) -> None:
    page = client.get(LINK)
    assert page.status_code == 200 and 'rel="linkset"' in page.headers["Link"]
    assert "?linkType=linkset" in page.headers["Link"]
    # Scanners and browsers that accept anything get the page, not JSON.
    for accept in ("*/*", "text/html,application/xhtml+xml,*/*;q=0.8"):
        response = client.get(LINK, headers={"Accept": accept})
        assert response.mimetype == "text/html", accept


def test_linksets_share_the_lookup_allowance(client: FlaskClient, catalog: Catalog) -> None:
    statuses = [client.get(LINK + "?linkType=linkset").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert client.get(LINK).status_code == 429


def test_unknown_items_are_404_as_linksets_too(client: FlaskClient, catalog: Catalog) -> None:
    response = client.get(f"/01/{GTIN}/21/AS2099C3H999999?linkType=linkset")
    assert response.status_code == 404
