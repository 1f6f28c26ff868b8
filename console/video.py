"""Video guidance in the console: start a call from a conversation or ticket, the agent's panel
(signalling, snapshots, recording chunks) and the call's files, served to staff only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import (
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from kefu import handoffs, outbox, tickets, video
from kefu.extensions import db
from kefu.i18n import current_lang
from kefu.models import Handoff
from kefu.requests import photos
from kefu.video import MediaKind, VideoError, VideoMedia, VideoSession, VideoStatus

from . import present
from .blueprint import actor, bp, current_staff, now, parse_int, record


def _session(session_id: int) -> VideoSession:
    found = db.session.get(VideoSession, session_id)
    if found is None:
        abort(404)
    return found


def _refused(exc: VideoError | photos.PhotoError, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": exc.code, "message": exc.message(current_lang())}), status


def delivery(session: VideoSession) -> dict[str, Any]:
    """How the link's customer-service message went (sent, or WeChat's refusal such as 45015)."""
    message = db.session.get(outbox.OutboxMessage, session.outbox_id) if session.outbox_id else None
    css, words = present.delivery_label(message)
    return {
        "status": message.status if message else None,
        "code": message.error_code if message else None,
        "label": words,
        "class": css,
    }


@bp.app_template_global()
def video_sessions(handoff_id: int | None = None, ticket_id: int | None = None) -> list[Any]:
    """A conversation's or ticket's video sessions, for the page's video card."""
    if handoff_id:
        return video.for_handoff(handoff_id)
    if ticket_id:
        return video.for_ticket(ticket_id)
    return []


@bp.post("/video")
def video_start() -> Response:
    """Start a video session for a conversation or ticket and send the customer the link."""
    member = current_staff()
    assert member is not None
    t = now()
    handoff = db.session.get(Handoff, parse_int(request.form.get("handoff")) or 0)
    ticket = tickets.by_number(request.form.get("ticket") or "") if not handoff else None
    if handoff is None and ticket is None:
        abort(404)
    back = (
        url_for(".conversation", handoff_id=handoff.id)
        if handoff
        else url_for(".ticket", number=ticket.number)  # type: ignore[union-attr]
    )
    openid = handoff.openid if handoff else ticket.openid  # type: ignore[union-attr]
    try:
        # WeChat delivers customer-service messages only within 48 hours of the user's last
        # message: outside it the link could never arrive, so no session is made.
        if openid and not handoffs.window(openid, t).open:
            raise video.error("window")
        created = video.create(actor(), member.id, t, handoff=handoff, ticket=ticket)
    except VideoError as exc:
        db.session.rollback()
        flash(exc.message(current_lang()), "error")
        return redirect(back)
    assert created.session.openid is not None
    message = outbox.enqueue_text(
        created.session.openid,
        video.link_text(created.url),
        purpose="video_link",
        ref=created.session.ticket.number if created.session.ticket else None,
    )
    created.session.outbox_id = message.id
    db.session.commit()
    flash(_("视频链接已发给用户，等用户点开加入"), "ok")
    return redirect(url_for(".video_panel", session_id=created.session.id))


@bp.get("/video/<int:session_id>")
def video_panel(session_id: int) -> str:
    """The agent's side of a call: remote video, mic, snapshot, recording, hang up."""
    session = _session(session_id)
    member = current_staff()
    assert member is not None
    t = now()
    ice = video.ice_servers(f"staff{member.id}", t)
    record("video.view", "video_session", session.id)
    page = render_template(
        "console/video.html",
        session=session,
        ice=ice,
        delivery=delivery(session),
        handoff=db.session.get(Handoff, session.handoff_id) if session.handoff_id else None,
        now=t,
    )
    db.session.commit()
    return page


@bp.post("/video/<int:session_id>/offer")
def video_offer(session_id: int) -> Response | tuple[Response, int]:
    """The agent's complete offer (ICE gathered), for the customer's page to fetch."""
    session = _session(session_id)
    if session.status == VideoStatus.ENDED:
        return _refused(video.error("ended"), 409)
    try:
        sdp = video.check_sdp((request.get_json(silent=True) or {}).get("sdp"), "offer")
    except VideoError as exc:
        return _refused(exc)
    video.put_signal(session, "offer", sdp)
    db.session.commit()
    return jsonify({"ok": True})


@bp.get("/video/<int:session_id>/state.json")
def video_state(session_id: int) -> Response:
    """The call's state for the panel's polling: status, link delivery, and the answer."""
    session = _session(session_id)
    answer = video.get_signal(session, "answer") if session.status != VideoStatus.ENDED else None
    body = {
        "status": session.status,
        "expired": session.expired(now()),
        "delivery": delivery(session),
        "answer": answer,
        "duration": session.duration,
    }
    db.session.commit()
    return jsonify(body)


@bp.post("/video/<int:session_id>/connected")
def video_connected(session_id: int) -> Response:
    """The agent's browser sees media: the call's start goes into the audit log."""
    session = _session(session_id)
    video.mark_live(session, actor(), now())
    db.session.commit()
    return jsonify({"status": session.status})


@bp.post("/video/<int:session_id>/end")
def video_end(session_id: int) -> Response:
    """Hang up: end, duration and participants go into the audit log."""
    session = _session(session_id)
    reason = (request.get_json(silent=True) or {}).get("reason") or "agent_hangup"
    video.end(session, actor(), str(reason), now())
    db.session.commit()
    return jsonify({"status": session.status, "duration": session.duration})


@bp.post("/video/<int:session_id>/snapshot")
def video_snapshot(session_id: int) -> Response | tuple[Response, int]:
    """A frame of the customer's video, kept with the ticket like a proof photo."""
    session = _session(session_id)
    upload = request.files.get("image")
    try:
        data = upload.read(photos.max_bytes() + 1) if upload else b""
        item = video.add_photo(session, MediaKind.SNAPSHOT, data, actor())
    except photos.PhotoError as exc:
        return _refused(exc)
    db.session.commit()
    return jsonify({"id": item.id, "url": url_for(".video_media", media_id=item.id)}), 201


@bp.post("/video/<int:session_id>/recording")
def video_recording_chunk(session_id: int) -> Response | tuple[Response, int]:
    """One chunk of the call's recording from the agent's browser (``seq`` in the query)."""
    session = _session(session_id)
    seq = request.args.get("seq", "")
    if not seq.isdigit() or int(seq) > 100_000:
        return jsonify({"error": "seq", "message": _("缺少分段序号")}), 400
    try:
        item = video.add_recording_chunk(
            session, int(seq), request.get_data(cache=False)[: video.CHUNK_MAX + 1], actor()
        )
    except VideoError as exc:
        return _refused(exc, 409 if exc.code in {"consent", "not_live"} else 400)
    db.session.commit()
    return jsonify({"id": item.id, "seq": item.seq}), 201


@bp.get("/video/<int:session_id>/recording.webm")
def video_recording(session_id: int) -> Response:
    """The call's recording: its chunks in order, which together are one WebM file."""
    session = _session(session_id)
    chunks = [video.media_path(m) for m in video.recording_chunks(session)]
    if not chunks:
        abort(404)
    record("video.recording_view", "video_session", session.id)
    db.session.commit()

    def body() -> Iterator[bytes]:
        for path in chunks:
            if path.is_file():
                yield path.read_bytes()

    return Response(stream_with_context(body()), mimetype="video/webm")


@bp.get("/video/media/<int:media_id>")
def video_media(media_id: int) -> Response:
    """A snapshot, customer photo or clip (staff only; never served to the public)."""
    item = db.session.get(VideoMedia, media_id)
    if item is None:
        abort(404)
    path = video.media_path(item)
    if not path.is_file():
        abort(404)
    record("video.media_view", "video_session", item.session_id, after={"media": item.id})
    db.session.commit()
    return Response(path.read_bytes(), mimetype=item.content_type)
