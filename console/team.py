"""The team page (supervisors): who is on duty, skill groups, roles, disabling an account."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from kefu import staff
from kefu.extensions import db
from kefu.staff import Role, SkillGroup, Staff

from .blueprint import bp, current_staff, record, role_required


@bp.get("/team")
@role_required(Role.SUPERVISOR)
def team() -> str:
    """Every account with its role, groups and duty."""
    rows = db.session.scalars(select(Staff).order_by(Staff.active.desc(), Staff.username)).all()
    return render_template(
        "console/team.html",
        rows=rows,
        groups=[g.value for g in SkillGroup],
        roles=[r.value for r in Role],
    )


@bp.post("/team/<int:staff_id>")
@role_required(Role.SUPERVISOR)
def team_update(staff_id: int) -> Response:
    """Change a member's groups and duty (supervisors), role or active state (admins)."""
    member = db.session.get(Staff, staff_id)
    me = current_staff()
    if member is None or me is None:
        abort(404)
    before = {
        "groups": member.groups,
        "on_duty": member.on_duty,
        "role": member.role,
        "active": member.active,
    }
    wanted = [g for g in request.form.getlist("groups") if g in {s.value for s in SkillGroup}]
    if not wanted:
        flash(_("至少选择一个技能组"), "error")
        return redirect(url_for(".team"))
    member.groups = wanted
    member.on_duty = request.form.get("on_duty") == "1" and member.active
    role = request.form.get("role", member.role)
    if role != member.role:
        # Only an admin hands out roles, and nobody changes their own.
        if not me.can(Role.ADMIN) or member.id == me.id or role not in {r.value for r in Role}:
            db.session.rollback()
            abort(403)
        member.role = role
    if request.form.get("disable") == "1":
        if not me.can(Role.ADMIN) or member.id == me.id:
            db.session.rollback()
            abort(403)
        staff.disable(member)
    record(
        "staff.update",
        "staff",
        member.id,
        before=before,
        after={
            "groups": member.groups,
            "on_duty": member.on_duty,
            "role": member.role,
            "active": member.active,
        },
    )
    db.session.commit()
    flash(_("已保存"), "ok")
    return redirect(url_for(".team"))
