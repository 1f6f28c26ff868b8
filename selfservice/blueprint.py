"""The ``selfservice`` blueprint object and what its views share: who is looking, and caching."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user

from kefu import integrations
from kefu.catalog.models import Installer

bp = Blueprint("selfservice", __name__)

F = TypeVar("F", bound=Callable[..., Any])

# Views that may send a visitor inside WeChat through silent OAuth to learn who they are.
OAUTH_ENDPOINTS = frozenset(
    {
        "selfservice.device",
        "selfservice.gs1",
        "selfservice.batch",
        "selfservice.warranty",
        "selfservice.login",
        "selfservice.index",
        "selfservice.repair_form",
    }
)
# Served to everyone alike; the only responses a shared cache may keep.
PUBLIC_ENDPOINTS = frozenset({"selfservice.media", "static"})


def current_installer() -> Installer | None:
    """The logged-in installer when the account is approved; None for everyone else."""
    if current_user.is_authenticated and current_user.is_active:
        return cast(Installer, current_user._get_current_object())
    return None


def installer_required(view: F) -> F:
    """Send visitors who are not approved installers to the login page, then back."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_installer() is None:
            return redirect(url_for("selfservice.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if not target:
        return default
    # Control characters (CR/LF would split the Location header; browsers drop tabs and
    # newlines, so "/\t/evil.example" becomes "//evil.example") never reach a redirect.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def in_wechat() -> bool:
    """Whether the request comes from WeChat's built-in browser."""
    return "micromessenger" in (request.user_agent.string or "").lower()


@bp.before_request
def _learn_wechat_identity() -> Response | None:
    # Inside WeChat the visitor never types a password: one silent snsapi_base round trip per
    # browser session tells us their openid, and with it their installer account if bound.
    # An installer logged in by password but not yet bound goes through it too, to be bound.
    installer = current_installer()
    oauth = integrations.oauth()
    if (
        request.method != "GET"
        or request.endpoint not in OAUTH_ENDPOINTS
        or oauth is None
        or not in_wechat()
        or (installer is not None and installer.wechat_openid)
        or session.get("wx_checked")
    ):
        return None
    state = secrets.token_urlsafe(16)
    session["wx_checked"] = True
    session["wx_state"] = state
    session["wx_next"] = request.full_path.rstrip("?")
    callback = current_app.config["PUBLIC_BASE_URL"] + url_for("selfservice.wechat_callback")
    return redirect(oauth.authorize_url(callback, state))


@bp.after_app_request
def _no_shared_caching(response: Response) -> Response:
    # Pages differ by account and language (both in cookies): never let a proxy or the WeChat
    # browser hand one visitor's page to another.
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint not in {"selfservice", None}:
        return response
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response


def lang_url(lang: str) -> str:
    """This page's URL in another language (the choice is then remembered in a cookie)."""
    args = request.args.to_dict()
    args["lang"] = lang
    # Query-only: relative to the current page, whatever its path.
    return "?" + urlencode(args)


def filesize(size: int) -> str:
    """Bytes as people read them: 850 KB, 2.4 MB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {"viewer": current_installer(), "lang_url": lang_url}


bp.add_app_template_filter(filesize, "filesize")
