"""GS1 Digital Link resolver: ``/01/{GTIN}/21/{serial}`` and ``/.well-known/gs1resolver``.

A Digital Link is printed on packaging and read by any scanner, so it is a public lookup by
serial, not a capability link: it shows the model's content and the public warranty line only
(never the device token, dealer, dates or the installer's part) and shares the warranty
lookup's rate limit. Link types and the linkset follow the GS1-Conformant Resolver standard and
RFC 9264 (application/linkset+json).
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from kefu.catalog import content as model_content
from kefu.catalog import gs1 as gs1_ids
from kefu.catalog.models import Device
from kefu.i18n import localized

from .blueprint import bp
from .media import media_href
from .pages import render_device, serial_lookup_limit

GS1_VOC = "https://gs1.org/voc/"
LINKSET_TYPE = "application/linkset+json"
# Link types answered with a part of the product page.
GS1_ANCHORS = {"gs1:pip": "", "gs1:faqs": "#faq", "gs1:support": "#help"}


def _link_type() -> str:
    # GS1 allows the link type as a compact "gs1:pip" or as its full vocabulary URI.
    value = request.args.get("linkType", "")
    return value.replace(GS1_VOC, "gs1:").replace("http://gs1.org/voc/", "gs1:")


def _wants_linkset() -> bool:
    if _link_type() in {"linkset", "all"}:
        return True
    # Only when asked for by name: scanners and browsers sending */* get the page.
    accept = request.accept_mimetypes
    named = any(mime == LINKSET_TYPE and quality > 0 for mime, quality in accept)
    return named and accept[LINKSET_TYPE] >= accept["text/html"]


@bp.get("/01/<gtin>/21/<serial>")
@serial_lookup_limit
def gs1(gtin: str, serial: str) -> str | BaseResponse:
    """Product page by default; a link type's target; or every link as a linkset."""
    found = gs1_ids.resolve(gtin, serial)
    if found is None:
        abort(404)  # exactly like an unknown device token
    if _wants_linkset():
        return _linkset_response(found, gtin, serial)
    link_type = _link_type() or "gs1:pip"
    if link_type == "gs1:instructions":
        manuals = [
            m for m in model_content.for_model(found.model).manuals if m.audience != "installer"
        ]
        if manuals:
            return _with_link_header(redirect(media_href(manuals[0].file), code=307), found)
    # Link types we do not publish fall back to the default (the product page), as GS1 asks.
    anchor = GS1_ANCHORS.get(link_type, "")
    if anchor:
        # The resolver's answer for a link type is a redirect to that part of the page.
        target = url_for(".gs1", gtin=gtin, serial=serial) + anchor
        return _with_link_header(redirect(target, code=303), found)
    response = current_app.make_response(render_device(found, public_only=True))
    return _with_link_header(response, found)


def _self_uri(gtin: str, serial: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"] + url_for(".gs1", gtin=gtin, serial=serial)


def _with_link_header(response: BaseResponse, device: Device) -> BaseResponse:
    # Every answer points at the linkset, so clients can discover the other link types. The
    # canonical link, not the request path: that may carry characters no header may hold.
    uri = gs1_ids.digital_link(device)
    response.headers["Link"] = f'<{uri}?linkType=linkset>; rel="linkset"; type="{LINKSET_TYPE}"'
    return response


def _link(href: str, title: str, mime: str = "text/html") -> dict[str, Any]:
    return {"href": href, "title": title, "type": mime, "hreflang": ["zh", "en"]}


def linkset(device: Device, gtin: str, serial: str) -> dict[str, Any]:
    """The RFC 9264 linkset of a Digital Link: model-level links only."""
    base = current_app.config["PUBLIC_BASE_URL"]
    page = _self_uri(gtin, serial)
    model = device.model
    content = model_content.for_model(model)
    name = localized(model.name, model.name_en)
    links: dict[str, Any] = {
        "anchor": page,
        GS1_VOC + "defaultLink": [_link(page, name)],
        GS1_VOC + "pip": [_link(page, name)],
        GS1_VOC + "faqs": [_link(page + "#faq", name)],
        GS1_VOC + "support": [_link(page + "#help", name)],
    }
    manuals = [m for m in content.manuals if m.audience != "installer"]
    if manuals:
        links[GS1_VOC + "instructions"] = [
            _link(
                _absolute(base, media_href(m.file)),
                localized(m.title, m.title_en),
                "application/pdf",
            )
            for m in manuals
        ]
    videos = [v for v in content.videos if v.audience != "installer"]
    if videos:
        links[GS1_VOC + "relatedVideo"] = [
            _link(_absolute(base, media_href(v.url)), localized(v.title, v.title_en), "video/mp4")
            for v in videos
        ]
    return {"linkset": [links]}


def _absolute(base: str, href: str) -> str:
    return href if href.startswith(("http://", "https://")) else base + href


def _linkset_response(device: Device, gtin: str, serial: str) -> Response:
    response = jsonify(linkset(device, gtin, serial))
    response.mimetype = LINKSET_TYPE
    # Resolvers answer scripts on other sites too (the standard asks for CORS).
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/.well-known/gs1resolver")
def gs1resolver() -> Response:
    """The resolver description file the GS1-Conformant Resolver standard places here."""
    response = jsonify(
        {
            "name": f"{current_app.config['BRAND_NAME']} kefu",
            "resolverRoot": current_app.config["PUBLIC_BASE_URL"],
            "supportedPrimaryKeys": ["01"],
            "supportedLinkType": [{"namespace": GS1_VOC, "prefix": "gs1:"}],
            "linkTypeDefaultCanBeLinkset": True,
            "linkTypeDefaultCanBeAll": True,
        }
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
