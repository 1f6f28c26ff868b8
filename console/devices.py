"""Devices and installers: look a device up by serial, approve installers, print labels."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from kefu import accounts
from kefu.catalog import devices as catalog_devices
from kefu.catalog import labels, warranty
from kefu.catalog.models import Installer
from kefu.extensions import db
from kefu.tickets import Ticket

from .blueprint import bp, record

MAX_LABELS = 1000


@bp.get("/devices")
def devices() -> str | Response:
    """Find a device by serial; installers waiting for approval; the label sheet form."""
    serial = (request.args.get("serial") or "").strip()
    if serial:
        return redirect(url_for(".device", serial=catalog_devices.normalise_serial(serial)))
    status = request.args.get("status", "pending")
    query = select(Installer).order_by(Installer.created_at, Installer.id).limit(200)
    if status in {"pending", "approved", "rejected"}:
        query = query.where(Installer.status == status)
    return render_template(
        "console/devices.html", installers=db.session.scalars(query).all(), status=status
    )


@bp.get("/devices/<serial>")
def device(serial: str) -> str | tuple[str, int]:
    """One device: model, warranty and its basis, link, tickets, installer."""
    found = catalog_devices.by_serial(serial)
    if found is None:
        return render_template("console/device.html", device=None, serial=serial), 404
    record("device.view", "device", found.serial)
    db.session.commit()
    return render_template(
        "console/device.html",
        device=found,
        serial=found.serial,
        warranty=warranty.compute(found),
        link=catalog_devices.device_url(found),
        tickets=db.session.scalars(
            select(Ticket).where(Ticket.serial == found.serial).order_by(Ticket.id.desc()).limit(50)
        ).all(),
    )


@bp.post("/installers/<int:installer_id>/<decision>")
def installer_decide(installer_id: int, decision: str) -> Response:
    """Approve or reject an installer account."""
    installer = db.session.get(Installer, installer_id)
    if installer is None or decision not in {"approve", "reject"}:
        abort(404)
    before = installer.status
    if decision == "approve":
        accounts.approve(installer)
    else:
        accounts.reject(installer)
    record(
        f"installer.{decision}",
        "installer",
        installer.id,
        before={"status": before},
        after={"status": installer.status},
    )
    db.session.commit()
    flash(
        _(
            "%(name)s：%(status)s",
            name=installer.name,
            status=_("已通过") if decision == "approve" else _("已拒绝"),
        ),
        "ok",
    )
    return redirect(url_for(".devices", status=before))


@bp.post("/labels")
def labels_sheet() -> Response:
    """An A4 PDF of QR labels for the serials given (one per line)."""
    wanted = [s for s in (request.form.get("serials") or "").split() if s.strip()]
    if not wanted or len(wanted) > MAX_LABELS:
        flash(_("请填写 1 到 %(n)d 个序列号，每行一个", n=MAX_LABELS), "error")
        return redirect(url_for(".devices"))
    found, missing = catalog_devices.by_serials(wanted)
    if missing:
        flash(_("找不到这些序列号：%(s)s", s="、".join(missing[:20])), "error")
        return redirect(url_for(".devices"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.pdf"
        labels.render(found, path)
        data = path.read_bytes()
    record("labels.print", "device", found[0].serial, note=f"{len(found)} labels")
    db.session.commit()
    import io

    return send_file(
        io.BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name="labels.pdf"
    )
