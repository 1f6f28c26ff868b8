"""``/wechat``: the official account's server URL."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kefu import dialog
from kefu.extensions import db
from kefu.models import InboundMessage, Subscriber
from kefu.wechat import (
    Crypto,
    Inbound,
    UnreadableMessage,
    parse,
    signature_valid,
    text_reply,
    transfer_reply,
)

bp = Blueprint("bot", __name__)
log = logging.getLogger(__name__)

# WeChat treats the literal body "success" (or an empty one) as "no reply" and does not retry.
NO_REPLY = "success"
# Old dedupe records and transcripts are pruned on about one message in this many.
PRUNE_CHANCE = 1 / 200


def _signed() -> bool:
    args = request.args
    return signature_valid(
        current_app.config["WECHAT_TOKEN"],
        args.get("signature", ""),
        args.get("timestamp", ""),
        args.get("nonce", ""),
    )


@bp.get("/wechat")
def verify() -> Response:
    """URL verification: echo ``echostr`` back when WeChat's signature is right."""
    if not _signed():
        abort(403)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
def receive() -> Response:
    """A message or event from WeChat; answered within WeChat's 5-second limit, never with a 5xx."""
    if not _signed():
        abort(403)
    body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413 from Flask
    safe_mode = request.args.get("encrypt_type", "raw").lower() == "aes"
    crypto = _crypto() if safe_mode else None
    try:
        if safe_mode:
            if crypto is None:
                raise UnreadableMessage("encrypted message but no WECHAT_ENCODING_AES_KEY")
            xml = crypto.decrypt(
                body.decode("utf-8", "replace"),
                request.args.get("msg_signature", ""),
                request.args.get("timestamp", ""),
                request.args.get("nonce", ""),
            )
        else:
            xml = body.decode("utf-8")
        inbound = parse(xml)
    except (UnreadableMessage, UnicodeDecodeError) as exc:
        log.warning("unreadable WeChat body (%d bytes): %s", len(body), exc)
        return _plain(NO_REPLY)

    try:
        reply = _process_once(inbound)
    except Exception:
        # A failure of ours must not become a 5xx: WeChat would retry and show the user an error.
        db.session.rollback()
        log.exception("failed to handle WeChat message %s", inbound.dedupe_key)
        return _plain(NO_REPLY)

    if not reply:
        return _plain(NO_REPLY)
    if crypto is not None:
        reply = crypto.encrypt(reply, request.args.get("nonce", ""), request.args.get("timestamp"))
    return Response(reply, mimetype="application/xml")


def _plain(text: str) -> Response:
    return Response(text, mimetype="text/plain")


def _crypto() -> Crypto | None:
    cfg = current_app.config
    if not cfg["WECHAT_ENCODING_AES_KEY"]:
        return None
    return Crypto(cfg["WECHAT_TOKEN"], cfg["WECHAT_ENCODING_AES_KEY"], cfg["WECHAT_APP_ID"])


def _process_once(inbound: Inbound) -> str:
    """Handle a delivery exactly once; a retry of it gets the first delivery's reply.

    WeChat retries up to three times when a reply is slow. The dedupe row is inserted in the
    same transaction as the work, so a concurrent retry blocks on the unique key until the first
    delivery commits, then reads its reply.
    """
    record = InboundMessage(dedupe_key=inbound.dedupe_key, openid=inbound.openid)
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        stored = db.session.scalar(
            select(InboundMessage.reply).where(InboundMessage.dedupe_key == inbound.dedupe_key)
        )
        return stored or ""
    reply = _dispatch(inbound)
    record.reply = reply
    if random.random() < PRUNE_CHANCE:
        dialog.prune(datetime.now(UTC))
    db.session.commit()
    return reply


def _dispatch(inbound: Inbound) -> str:
    now = datetime.now(UTC)
    if inbound.kind == "event":
        return _event(inbound, now)
    if inbound.kind == "text":
        return _render(inbound, dialog.respond(inbound.openid, inbound.text, now))
    if inbound.kind == "voice":
        if inbound.text.strip():
            return _render(inbound, dialog.respond(inbound.openid, inbound.text, now))
        return _canned(inbound, "voice_unrecognised", now)
    if inbound.kind in {"image", "location", "link", "video"}:
        return _canned(inbound, inbound.kind, now)
    return _canned(inbound, "unsupported", now)


def _canned(inbound: Inbound, key: str, now: datetime) -> str:
    """A fixed reply to media, unless a person owns the conversation (then it goes to them)."""
    if dialog.with_human(inbound.openid, now):
        return transfer_reply(inbound, current_app.config["WECHAT_KF_ACCOUNT"])
    reply_text = dialog.text(key)
    dialog.say(inbound.openid, reply_text, now)
    return text_reply(inbound, reply_text)


def _render(inbound: Inbound, reply: dialog.Reply) -> str:
    if reply.outcome in {"handoff", "with_human"}:
        return transfer_reply(inbound, current_app.config["WECHAT_KF_ACCOUNT"])
    return text_reply(inbound, reply.text)


def _event(inbound: Inbound, now: datetime) -> str:
    event = inbound.event
    if event == "subscribe":
        subscriber = db.session.get(Subscriber, inbound.openid)
        if subscriber is None:
            subscriber = Subscriber(openid=inbound.openid, subscribed_at=now)
            db.session.add(subscriber)
        if inbound.event_key:
            # Followed through a parametric QR code ("qrscene_" + scene, prefix removed in parse).
            subscriber.scene = subscriber.scene or inbound.event_key[:64]
            subscriber.last_scene = inbound.event_key[:64]
        welcome = dialog.text("greeting")
        dialog.say(inbound.openid, welcome, now)
        return text_reply(inbound, welcome)
    if event == "scan":
        subscriber = db.session.get(Subscriber, inbound.openid)
        if subscriber is not None and inbound.event_key:
            subscriber.last_scene = inbound.event_key[:64]
        welcome = dialog.text("greeting")
        dialog.say(inbound.openid, welcome, now)
        return text_reply(inbound, welcome)
    if event == "unsubscribe":
        dialog.forget_user(inbound.openid)
        return ""
    if event == "click":
        return _render(inbound, dialog.menu_click(inbound.openid, inbound.event_key, now))
    if event == "kf_close_session":
        dialog.end_human_session(inbound.openid)
        return ""
    return ""
