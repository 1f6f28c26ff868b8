"""The ``console`` blueprint object and what its views share: who is signed in, and roles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, abort, current_app, g, redirect, request, session, url_for

from kefu import audit, staff
from kefu.staff import Role, Staff

bp = Blueprint("console", __name__, url_prefix="/console")

F = TypeVar("F", bound=Callable[..., Any])
SESSION_KEY = "console_staff"
# However active, a console session ends this long after login: a shared PC left signed in
# overnight does not stay signed in.
MAX_SESSION = timedelta(hours=12)
PUBLIC_VIEWS = frozenset({"console.login"})


def current_staff() -> Staff | None:
    """The signed-in staff member of this request (console session), if any."""
    if "staff" not in g:
        g.staff = _from_session()
    return cast(Staff | None, g.staff)


def _from_session() -> Staff | None:
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    now = datetime.now(UTC).timestamp()
    idle = current_app.config["CONSOLE_SESSION_MINUTES"] * 60
    if now - float(data.get("seen", 0)) > idle or now - float(data.get("at", 0)) > (
        MAX_SESSION.total_seconds()
    ):
        session.pop(SESSION_KEY, None)
        return None
    member = staff.load(data.get("id"))
    if member is None:
        session.pop(SESSION_KEY, None)
        return None
    data["seen"] = now
    session[SESSION_KEY] = data
    return member


def sign_in(member: Staff) -> None:
    """Start a console session for ``member`` (a fresh session: no fixation)."""
    keep = {k: session[k] for k in ("lang",) if k in session}
    session.clear()
    session.update(keep)
    now = datetime.now(UTC)
    session[SESSION_KEY] = {"id": member.id, "at": now.timestamp(), "seen": now.timestamp()}
    member.last_login_at = now
    g.staff = member


def sign_out() -> None:
    """End the console session."""
    session.pop(SESSION_KEY, None)
    g.staff = None


def actor() -> str:
    """The audit log's name for the signed-in member."""
    member = current_staff()
    return f"staff:{member.username}" if member else "system"


def record(action: str, target_type: str, target_id: object, **kwargs: Any) -> None:
    """Audit an action of the signed-in member."""
    audit.record(actor(), action, target_type, str(target_id), **kwargs)


def role_required(role: Role) -> Callable[[F], F]:
    """Refuse (403) members below ``role``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            member = current_staff()
            if member is None or not member.can(role):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


@bp.before_request
def _login_required() -> Response | None:
    # Every console page needs a signed-in, active staff member; the login page is the only
    # exception.
    if request.endpoint in PUBLIC_VIEWS:
        return None
    if current_staff() is None:
        return cast(
            Response, redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        )
    return None


@bp.after_request
def _private(response: Response) -> Response:
    # Transcripts and phone numbers: never cached by a browser or proxy.
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response


@bp.app_template_global()
def console_staff() -> Staff | None:
    """The signed-in staff member, for templates."""
    return current_staff() if request.blueprint in {"console", "api"} else None


def parse_int(value: str | None) -> int | None:
    """An id from a form or query string, None when it is not a positive integer."""
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number > 0 else None


def page_args() -> dict[str, str]:
    """The current query string, for building filter links."""
    return {k: v for k, v in request.args.items() if v}


def now() -> datetime:
    """The request's clock."""
    return datetime.now(UTC)
