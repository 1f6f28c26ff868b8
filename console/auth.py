"""Staff login and logout."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from kefu import staff
from kefu.extensions import db, limiter
from selfservice.blueprint import safe_next

from .blueprint import bp, current_staff, record, sign_in, sign_out


def _login_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT"])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response | tuple[str, int]:
    """Staff login with username and password."""
    next_url = safe_next(request.values.get("next"), url_for("console.queue"))
    if not next_url.startswith("/console"):
        next_url = url_for("console.queue")
    if current_staff() is not None:
        return redirect(next_url)
    username = (request.form.get("username") or "").strip()
    if request.method == "POST":
        member = staff.authenticate(username, request.form.get("password") or "")
        if member is None:
            flash(_("用户名或密码不正确，或账号已停用"), "error")
            return render_template("console/login.html", username=username, next=next_url), 400
        sign_in(member)
        record("staff.login", "staff", member.id)
        db.session.commit()
        return redirect(next_url)
    return render_template("console/login.html", username=username, next=next_url)


@bp.post("/logout")
def logout() -> Response:
    """End the console session."""
    member = current_staff()
    if member is not None:
        record("staff.logout", "staff", member.id)
        db.session.commit()
    sign_out()
    flash(_("已退出登录"), "ok")
    return redirect(url_for("console.login"))


@bp.post("/duty")
def duty() -> Response:
    """Go on or off duty (only on-duty agents get conversations routed to them)."""
    member = current_staff()
    assert member is not None
    member.on_duty = request.form.get("on") == "1"
    record("staff.duty", "staff", member.id, after={"on_duty": member.on_duty})
    db.session.commit()
    return redirect(safe_next(request.form.get("next"), url_for("console.queue")))
