"""Installer pages: register, log in (password or WeChat), batch warranty lookup."""

from __future__ import annotations

import csv
import io
import logging
import re

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from kefu import accounts, integrations
from kefu.catalog import devices
from kefu.catalog.models import Device
from kefu.catalog.warranty import WarrantyStatus
from kefu.extensions import db, limiter
from kefu.i18n import current_lang, localized
from kefu.imports import decode
from kefu.wechat import WeChatApiError

from .blueprint import bp, current_installer, installer_required, safe_next

log = logging.getLogger(__name__)


def _login_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT"])


def _oauth_limit() -> str:
    return str(current_app.config["OAUTH_CALLBACK_LIMIT"])


def _batch_limit() -> str:
    return str(current_app.config["BATCH_LOOKUP_LIMIT"])


def _account_key() -> str:
    # Per account, wherever the installer is: a second phone or a new address does not add to
    # the allowance.
    installer = current_installer()
    return f"installer:{installer.id}" if installer is not None else get_remote_address()


# The page and its CSV download draw on one allowance.
batch_lookup_limit = limiter.shared_limit(
    _batch_limit, scope="batch-lookup", key_func=_account_key, methods=["POST"]
)


def _account_error(code: str) -> str:
    messages = {
        "phone_invalid": _("请填写 11 位手机号"),
        "password_short": _("密码至少 %(n)d 位", n=accounts.MIN_PASSWORD_LENGTH),
        "name_invalid": _("请填写姓名"),
        "company_invalid": _("请填写公司名称"),
        "phone_taken": _("该手机号已注册，请直接登录"),
    }
    return messages[code]


@bp.route("/installer/register", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def register() -> str | BaseResponse:
    """Installer registration; the account waits for staff approval."""
    form = {k: (request.form.get(k) or "").strip() for k in ("phone", "name", "company")}
    if request.method == "POST":
        try:
            accounts.register(
                form["phone"], request.form.get("password") or "", form["name"], form["company"]
            )
        except accounts.AccountError as exc:
            db.session.rollback()
            flash(_account_error(exc.code), "error")
            return render_template("selfservice/register.html", form=form), 400
        db.session.commit()
        return render_template("selfservice/pending.html", registered=True)
    return render_template("selfservice/register.html", form=form)


@bp.route("/installer/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | BaseResponse:
    """Installer login with phone and password (outside WeChat, or once to bind WeChat)."""
    next_url = safe_next(request.values.get("next"), url_for(".batch"))
    if current_installer() is not None:
        return redirect(next_url)
    phone = (request.form.get("phone") or "").strip()
    if request.method == "POST":
        installer = accounts.authenticate(phone, request.form.get("password") or "")
        if installer is None:
            flash(_("手机号或密码不正确"), "error")
            return render_template("selfservice/login.html", phone=phone, next=next_url), 400
        if installer.status == "pending":
            return render_template("selfservice/pending.html", registered=False)
        if installer.status != "approved":
            flash(_("该账号未通过审核，如有疑问请联系客服"), "error")
            return render_template("selfservice/login.html", phone=phone, next=next_url), 403
        login_user(installer, remember=True)
        # Inside WeChat the silent OAuth already told us this visitor's openid: logging in
        # with a password there is how an installer's WeChat gets bound to the account.
        openid = session.pop("wx_openid", None)
        if openid and accounts.bind_openid(installer, openid):
            db.session.commit()
        return redirect(next_url)
    return render_template("selfservice/login.html", phone=phone, next=next_url)


@bp.post("/installer/logout")
def logout() -> BaseResponse:
    """Log out; inside WeChat, do not log straight back in through OAuth this session."""
    logout_user()
    session.pop("wx_openid", None)
    session["wx_checked"] = True
    flash(_("已退出登录"), "ok")
    return redirect(url_for(".login"))


@bp.get("/auth/wechat")
# Each callback makes a call to WeChat (bounded by WECHAT_HTTP_TIMEOUT): a client looping on it
# must not keep workers waiting on WeChat.
@limiter.limit(_oauth_limit)
def wechat_callback() -> BaseResponse:
    """WeChat's snsapi_base redirect: learn the openid, log in or bind the installer, go on."""
    expected = session.pop("wx_state", None)
    next_url = safe_next(session.pop("wx_next", None), url_for(".index"))
    code = request.args.get("code", "")
    if not expected or request.args.get("state") != expected:
        abort(400)
    oauth = integrations.oauth()
    if not code or oauth is None:
        # No code: the visitor did not authorise; carry on as an anonymous visitor.
        return redirect(next_url)
    try:
        openid = oauth.openid_for_code(code)
    except WeChatApiError as exc:
        log.warning("WeChat OAuth failed: %s", exc)
        return redirect(next_url)
    installer = current_installer()
    if installer is not None:
        if accounts.bind_openid(installer, openid):
            db.session.commit()
        return redirect(next_url)
    bound = accounts.approved_by_openid(openid)
    if bound is not None:
        login_user(bound, remember=True)
    else:
        # Kept so that a password login later in this session binds this WeChat user.
        session["wx_openid"] = openid
    return redirect(next_url)


_SPLIT_RE = re.compile(r"[\s,;，；、]+")
_SERIAL_HEADERS = {"serial", "serial_number", "sn", "序列号"}


def _serials_from_csv(raw: bytes) -> list[str]:
    """The serial column of an uploaded CSV; raises DeviceError for a file that is not one."""
    try:
        text = decode(raw, spreadsheet=True)
    except UnicodeDecodeError as exc:
        raise devices.DeviceError(
            "文件不是 UTF-8 或 GBK 编码的 CSV", "the file is not a UTF-8 or GBK CSV file"
        ) from exc
    # strict: an unclosed quote is an error, not a cell that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        rows = [row for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise devices.csv_problem(exc, reader.line_num) from exc
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    column = next((i for i, name in enumerate(header) if name in _SERIAL_HEADERS), None)
    if column is None:
        column = 0
    else:
        rows = rows[1:]
    return [row[column].strip() for row in rows if len(row) > column and row[column].strip()]


def _serials_from_request() -> list[str]:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return _serials_from_csv(upload.read())
    return [s for s in _SPLIT_RE.split(request.form.get("serials") or "") if s]


Row = tuple[str, Device | None, WarrantyStatus | None]


@bp.route("/installer/batch", methods=["GET", "POST"])
@installer_required
@batch_lookup_limit
def batch() -> str | tuple[str, int]:
    """Batch warranty lookup for installers: up to 100 serials pasted or from a CSV file."""
    if request.method == "GET":
        return render_template("selfservice/batch.html", serials="", rows=None)
    try:
        serials = _serials_from_request()
    except devices.DeviceError as exc:
        flash(exc.message(current_lang()), "error")
        return render_template("selfservice/batch.html", serials="", rows=None), 400
    text = "\n".join(serials)
    if not serials:
        flash(_("请粘贴序列号，或选择一个 CSV 文件"), "error")
        return render_template("selfservice/batch.html", serials=text, rows=None), 400
    try:
        rows = devices.batch_lookup(serials)
    except devices.DeviceError as exc:
        flash(exc.message(current_lang()), "error")
        return render_template("selfservice/batch.html", serials=text, rows=None), 400
    found = [w for _s, _d, w in rows if w is not None]
    summary = {
        "in": sum(1 for w in found if w.in_warranty),
        "out": sum(1 for w in found if not w.in_warranty and w.end is not None),
        "unknown": sum(1 for w in found if w.end is None),
        "missing": len(rows) - len(found),
    }
    return render_template("selfservice/batch.html", serials=text, rows=rows, summary=summary)


def _csv_cell(value: str) -> str:
    # A cell starting with = + - @ is a formula to Excel; pasted serials are untrusted input.
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


@bp.post("/installer/batch.csv")
@installer_required
@batch_lookup_limit
def batch_csv() -> Response | tuple[str, int]:
    """The batch lookup result as a CSV file (UTF-8 with BOM, so Excel shows Chinese)."""
    serials: list[str] = []
    try:
        serials = _serials_from_request()
        rows = devices.batch_lookup(serials)
    except devices.DeviceError as exc:
        flash(exc.message(current_lang()), "error")
        return render_template("selfservice/batch.html", serials="\n".join(serials), rows=None), 400
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("序列号"), _("型号"), _("保修状态"), _("保修截止"), _("保修依据")])
    for serial, device, status in rows:
        if device is None or status is None:
            writer.writerow([_csv_cell(serial), "", _("未找到"), "", ""])
            continue
        writer.writerow(
            [
                device.serial,
                f"{device.model.code} {localized(device.model.name, device.model.name_en)}",
                # As the page says it: no start date on record is unknown, not expired.
                _("未知")
                if status.end is None
                else (_("保内") if status.in_warranty else _("过保")),
                status.end.isoformat() if status.end else "",
                localized(*status.basis_label),
            ]
        )
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=warranty.csv"},
    )
