"""The customer's side of video guidance (``/v/<token>``): join with one tap, or send a photo or
a short video where live video cannot work."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flask import (
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from kefu import integrations, video
from kefu.extensions import db, limiter
from kefu.i18n import current_lang
from kefu.requests import photos
from kefu.video import MediaKind, VideoError, VideoSession, VideoStatus

from .blueprint import bp, in_wechat
from .repair import visitor_openid

KEYS = "video_keys"  # this browser's join keys, by session id, in the signed session cookie


def _key(found: VideoSession) -> str | None:
    keys = session.get(KEYS) or {}
    value = keys.get(str(found.id)) if isinstance(keys, dict) else None
    return str(value) if value else None


def _remember_key(found: VideoSession, key: str) -> None:
    keys = dict(session.get(KEYS) or {})
    keys[str(found.id)] = key
    # A handful of recent calls at most: the cookie stays small.
    session[KEYS] = dict(list(keys.items())[-5:])


def _identity() -> str | None:
    """Inside WeChat the visitor's openid (OAuth); outside it, None (the link alone counts).

    Inside WeChat, with an official account configured, a visitor WeChat would not identify
    (they refused, or the round trip failed) is refused rather than let in on the link alone.
    """
    if not in_wechat():
        return None
    openid = visitor_openid()
    if openid is None and integrations.oauth() is not None:
        raise video.error("identity")
    return openid


def _problem(exc: VideoError, status: int) -> tuple[Response, int]:
    return jsonify({"error": exc.code, "message": exc.message(current_lang())}), status


def _page_problem(exc: VideoError, status: int) -> tuple[str, int]:
    page = render_template(
        "selfservice/video.html", problem=exc.message(current_lang()), found=None, token=""
    )
    return page, status


STATUS_FOR = {
    "identity": 403,
    "not_found": 404,
    "expired": 410,
    "ended": 410,
    "used": 409,
    "not_you": 403,
    "stale": 409,
}


def _load(token: str) -> VideoSession:
    found = video.by_token(token)
    if found is None:
        raise video.error("not_found")
    return found


def _holder(token: str) -> VideoSession:
    """The session, when this browser is the one that joined it."""
    found = _load(token)
    if not video.holds(found, _key(found)):
        raise video.error("used" if found.join_key_hash else "not_found")
    return found


def _oauth_redirect() -> Response | None:
    # Inside WeChat the link is only for the conversation's user: learn who is looking with
    # one silent snsapi_base round trip (WeChat's callback sets the openid in the session).
    oauth = integrations.oauth()
    if oauth is None or not in_wechat() or visitor_openid() or session.get("video_oauth_tried"):
        return None
    state = secrets.token_urlsafe(16)
    session["video_oauth_tried"] = True
    session["wx_state"] = state
    session["wx_next"] = request.full_path.rstrip("?")
    callback = current_app.config["PUBLIC_BASE_URL"] + url_for("selfservice.wechat_callback")
    return redirect(oauth.authorize_url(callback, state))


@bp.get("/v/<token>")
def video_page(token: str) -> Any:
    """The call page: what happens, the recording notice if any, and one button to join."""
    now = datetime.now(UTC)
    try:
        found = _load(token)
        held = video.holds(found, _key(found))
        if not held:
            sent = _oauth_redirect()
            if sent is not None:
                return sent
            video.check_visitor(found, now, _identity())
            if found.join_key_hash:
                raise video.error("used")
        elif found.status == VideoStatus.ENDED:
            raise video.error("ended")
    except VideoError as exc:
        return _page_problem(exc, STATUS_FOR.get(exc.code, 400))
    urls = {
        name: url_for(f"selfservice.video_{name}", token=token)
        for name in ("join", "offer", "answer", "event", "upload")
    }
    return render_template(
        "selfservice/video.html",
        found=found,
        problem=None,
        urls=urls,
        upload_max=video.upload_max(),
    )


@bp.post("/v/<token>/join")
def video_join(token: str) -> Response | tuple[Response, int]:
    """Join the call from this browser (the link is then used up); returns the ICE servers."""
    now = datetime.now(UTC)
    body = request.get_json(silent=True) or {}
    try:
        found = _load(token)
        key = _key(found) or secrets.token_urlsafe(24)
        video.join(found, key, now, _identity(), consent=bool(body.get("consent")))
    except VideoError as exc:
        db.session.rollback()
        return _problem(exc, STATUS_FOR.get(exc.code, 400))
    _remember_key(found, key)
    db.session.commit()
    offer = video.get_signal(found, "offer")
    return jsonify(
        {
            "ice_servers": video.ice_servers(f"c{found.id}", now),
            "offer": offer,
            "version": video.offer_version(offer),
        }
    )


@bp.get("/v/<token>/offer")
def video_offer(token: str) -> Response | tuple[Response, int]:
    """The agent's offer, once it is there (204 until then)."""
    try:
        found = _holder(token)
    except VideoError as exc:
        return _problem(exc, STATUS_FOR.get(exc.code, 400))
    if found.status == VideoStatus.ENDED:
        return _problem(video.error("ended"), 410)
    offer = video.get_signal(found, "offer")
    if offer is None:
        return Response(status=204)
    return jsonify({"sdp": offer, "version": video.offer_version(offer)})


@bp.post("/v/<token>/answer")
def video_answer(token: str) -> Response | tuple[Response, int]:
    """The customer's complete answer, for the agent's panel to fetch."""
    try:
        found = _holder(token)
        if found.status == VideoStatus.ENDED:
            raise video.error("ended")
        body = request.get_json(silent=True) or {}
        sdp = video.check_sdp(body.get("sdp"), "answer")
        video.put_answer(found, sdp, body.get("version"))
    except VideoError as exc:
        return _problem(exc, STATUS_FOR.get(exc.code, 400))
    db.session.commit()
    return jsonify({"ok": True})


@bp.post("/v/<token>/event")
def video_event(token: str) -> Response | tuple[Response, int]:
    """What the customer's page saw: connected, failed (no ICE within 15 s, camera refused),
    or hung up."""
    now = datetime.now(UTC)
    kind = str((request.get_json(silent=True) or {}).get("event") or "")
    try:
        found = _holder(token)
    except VideoError as exc:
        return _problem(exc, STATUS_FOR.get(exc.code, 400))
    if kind == "connected":
        video.mark_live(found, "customer", now)
    elif kind in {"hangup", "failed", "camera_denied", "unsupported"}:
        video.end(found, "customer", f"customer_{kind}", now)
    else:
        return jsonify({"error": "event", "message": _("未知的事件")}), 400
    db.session.commit()
    return jsonify({"status": found.status})


def _upload_limit() -> str:
    return str(current_app.config.get("REQUEST_SUBMIT_LIMIT", "10/hour;30/day"))


@bp.post("/v/<token>/upload")
# Each upload is stored and shown to an agent: the same per-client limit as web requests.
@limiter.limit(_upload_limit)
def video_upload(token: str) -> Response | tuple[Response, int]:
    """A photo or short video instead of live video; it lands in the conversation."""
    now = datetime.now(UTC)
    try:
        found = _load(token)
        if not video.holds(found, _key(found)):
            # The page could not start video at all: the upload claims the link instead.
            key = secrets.token_urlsafe(24)
            video.claim(found, key, now, _identity())
            _remember_key(found, key)
        upload = request.files.get("file")
        data = upload.read(max(photos.max_bytes(), video.upload_max()) + 1) if upload else b""
        mimetype = (upload.mimetype if upload else "") or ""
        if mimetype.startswith("video/"):
            item = video.add_clip(found, data, "customer")
        else:
            item = video.add_photo(found, MediaKind.PHOTO, data, "customer")
    except (VideoError, photos.PhotoError) as exc:
        db.session.rollback()
        status = STATUS_FOR.get(exc.code, 413 if exc.code == "too_large" else 400)
        return jsonify({"error": exc.code, "message": exc.message(current_lang())}), status
    db.session.commit()
    message = _("已发送，客服会在会话里看到") if item else ""
    return jsonify({"ok": True, "message": message}), 201
