"""Public pages: the device page behind each QR code, installation registration, warranty lookup."""

from __future__ import annotations

from datetime import datetime

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from kefu import timeutil
from kefu.catalog import content as model_content
from kefu.catalog import devices
from kefu.catalog.models import Device, InstallationStatus
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


def render_device(device: Device, public_only: bool = False) -> str:
    """The device page: what everyone sees, plus the installer's part for approved installers.

    ``public_only`` (GS1 Digital Link pages, which anyone can build from a serial) leaves out
    everything tied to this device beyond the public warranty line, for installers too.
    """
    installer = None if public_only else current_installer()
    model = device.model
    # The same for every device of the model: cached per model and revision, not queried.
    content = model_content.for_model(model)
    faq = [e for e in content.faq if installer is not None or e.audience != "installer"]
    return render_template(
        "selfservice/device.html",
        device=device,
        model=model,
        warranty=compute(device),
        installer=installer,
        manuals=[m for m in content.manuals if m.audience != "installer"],
        videos=[v for v in content.videos if v.audience != "installer"],
        faq=[e for e in faq if e.audience != "installer"],
        install_manuals=[m for m in content.manuals if m.audience == "installer"],
        install_videos=[v for v in content.videos if v.audience == "installer"],
        install_faq=[e for e in faq if e.audience == "installer"],
        firmware=list(content.firmware),
        today=timeutil.today(),
        public_only=public_only,
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
        status = devices.register_installation(found, installer, installed_on)
    except devices.DeviceError as exc:
        db.session.rollback()
        flash(exc.message(current_lang()), "error")
        return redirect(url_for(".device", token=token) + "#install")
    db.session.commit()
    flash(_("已登记安装：%(date)s", date=installed_on.isoformat()), "ok")
    if status == InstallationStatus.FLAGGED:
        flash(_("该日期超出出厂后的安装登记期限，需客服审核后才作为保修起算日期。"), "error")
    return redirect(url_for(".device", token=token) + "#install")


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
