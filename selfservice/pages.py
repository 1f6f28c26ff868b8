"""Public pages: the device page behind each QR code, GS1 Digital Link, warranty lookup, media."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from kefu.catalog import devices
from kefu.catalog import gs1 as digital_link
from kefu.catalog.models import Device
from kefu.catalog.warranty import compute
from kefu.extensions import db, limiter
from kefu.i18n import current_lang

from .blueprint import bp, current_installer, installer_required


def _lookup_limit() -> str:
    return str(current_app.config["WARRANTY_LOOKUP_LIMIT"])


def _not_anchor_redirect(response: Response) -> bool:
    # A GS1 link type answered by a 303 to a part of the same page is one lookup, not two.
    return response.status_code != 303


# One bucket for every way of looking a device up by its serial, so switching between the
# warranty form and GS1 links does not multiply a harvester's allowance.
serial_lookup_limit = limiter.shared_limit(
    _lookup_limit, scope="serial-lookup", deduct_when=_not_anchor_redirect
)


def render_device(device: Device) -> str:
    """The device page: what everyone sees, plus the installer's part for approved installers."""
    installer = current_installer()
    model = device.model
    faq = devices.faq_for(model, installer=installer is not None)
    return render_template(
        "selfservice/device.html",
        device=device,
        model=model,
        warranty=compute(device),
        installer=installer,
        manuals=[m for m in model.manuals if m.audience != "installer"],
        videos=[v for v in model.videos if v.audience != "installer"],
        faq=[e for e in faq if e.audience != "installer"],
        install_manuals=[m for m in model.manuals if m.audience == "installer"],
        install_videos=[v for v in model.videos if v.audience == "installer"],
        install_faq=[e for e in faq if e.audience == "installer"],
        firmware=model.firmware,
        today=datetime.now(UTC).date(),
    )


@bp.get("/d/<token>")
def device(token: str) -> str:
    """The page behind a device's QR code; installers see more at the same URL."""
    found = devices.by_token(token)
    if found is None:
        abort(404)
    return render_device(found)


@bp.post("/d/<token>/install")
@installer_required
def install(token: str) -> BaseResponse:
    """Installation registration by the logged-in installer."""
    found = devices.by_token(token)
    if found is None:
        abort(404)
    installer = current_installer()
    assert installer is not None  # installer_required
    raw = (request.form.get("installed_on") or "").strip()
    try:
        installed_on = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        flash(_("请填写安装日期（年-月-日）"), "error")
        return redirect(url_for(".device", token=token) + "#install")
    try:
        devices.register_installation(found, installer, installed_on)
    except devices.DeviceError as exc:
        db.session.rollback()
        flash(exc.message(current_lang()), "error")
        return redirect(url_for(".device", token=token) + "#install")
    db.session.commit()
    flash(_("已登记安装：%(date)s", date=installed_on.isoformat()), "ok")
    return redirect(url_for(".device", token=token) + "#install")


# GS1 Digital Link link types we answer, and the part of the device page each one means.
GS1_ANCHORS = {"gs1:pip": "", "gs1:faqs": "#faq", "gs1:support": "#help"}


@bp.get("/01/<gtin>/21/<serial>")
@serial_lookup_limit
def gs1(gtin: str, serial: str) -> str | BaseResponse:
    """GS1 Digital Link resolver: product page by default, or the manual / FAQ / support link."""
    found = gs1_resolve(gtin, serial)
    link_type = request.args.get("linkType", "gs1:pip")
    # GS1 allows the link type as a compact "gs1:pip" or as its full vocabulary URI.
    link_type = link_type.replace("https://gs1.org/voc/", "gs1:")
    if link_type == "gs1:instructions":
        manuals = [m for m in found.model.manuals if m.audience != "installer"]
        if manuals:
            return redirect(media_href(manuals[0].file), code=307)
    # Link types we do not publish fall back to the default (the product page), as GS1 asks.
    anchor = GS1_ANCHORS.get(link_type, "")
    if anchor:
        # The resolver's answer for a link type is a redirect to that part of the page.
        target = url_for(".gs1", gtin=gtin, serial=serial) + anchor
        return redirect(target, code=303)
    return render_device(found)


def gs1_resolve(gtin: str, serial: str) -> Device:
    """The device named by a Digital Link path, or 404 exactly like an unknown token."""
    found = digital_link.resolve(gtin, serial)
    if found is None:
        abort(404)
    return found


def media_href(value: str) -> str:
    """A media field as a link: absolute URLs as they are, paths under /media/."""
    if value.startswith(("http://", "https://")):
        return value
    return url_for("selfservice.media", filename=value.lstrip("/"))


bp.add_app_template_filter(media_href, "media")


@bp.get("/media/<path:filename>")
def media(filename: str) -> Response:
    """Files under MEDIA_ROOT (photos, manuals, firmware); nothing outside it."""
    # send_from_directory refuses paths that escape the folder (404), so ../ cannot reach out.
    return send_from_directory(current_app.config["MEDIA_ROOT"], filename, max_age=3600)


@bp.route("/warranty", methods=["GET", "POST"])
@limiter.shared_limit(_lookup_limit, scope="serial-lookup", methods=["POST"])
def warranty() -> str:
    """Public warranty lookup: serial in; model, in or out of warranty and end date out."""
    serial = ""
    result = None
    searched = False
    if request.method == "POST":
        serial = (request.form.get("serial") or "").strip()[:64]
        if not serial:
            flash(_("请输入设备序列号"), "error")
        else:
            searched = True
            found = devices.by_serial(serial)
            if found is not None:
                result = (found.model, compute(found))
    return render_template(
        "selfservice/warranty.html", serial=serial, result=result, searched=searched
    )


@bp.get("/")
def index() -> str:
    """Landing page for visitors who arrive without a QR code."""
    return render_template("selfservice/index.html")
