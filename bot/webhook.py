"""``/wechat``: the official account's server URL.

One delivery is one call on the core each way: ``Endpoint.open`` (verify, decrypt, parse),
``dialog.handle`` (the conversation rules), then the reply rendered and ``Endpoint.seal``-ed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, request

from kefu import dialog, integrations
from kefu.extensions import db
from kefu.wechat import Inbound, Refused, UnreadableMessage, text_reply, transfer_reply

from . import delivery

bp = Blueprint("bot", __name__)
log = logging.getLogger(__name__)

# WeChat treats the literal body "success" (or an empty one) as "no reply" and does not retry.
NO_REPLY = "success"


@bp.get("/wechat")
def verify() -> Response:
    """URL verification: echo ``echostr`` back when WeChat's signature is right and fresh."""
    try:
        echostr = integrations.endpoint().verify_url(request.args)
    except Refused as exc:
        log.warning("refused /wechat verification: %s", exc)
        abort(403)
    return Response(echostr, mimetype="text/plain")


@bp.post("/wechat")
def receive() -> Response:
    """A message or event from WeChat; answered within WeChat's 5-second limit, never with a 5xx."""
    endpoint = integrations.endpoint()
    body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413 from Flask
    try:
        inbound = endpoint.open(request.args, body, integrations.nonce_store())
    except Refused as exc:
        db.session.rollback()
        log.warning("refused /wechat delivery: %s", exc)
        abort(403)
    except UnreadableMessage as exc:
        db.session.rollback()
        log.warning("unreadable WeChat body (%d bytes): %s", len(body), exc)
        return _plain(NO_REPLY)
    except Exception:
        # Whatever else breaks while reading a delivery, WeChat must not see a 5xx.
        db.session.rollback()
        log.exception("failed to read a WeChat delivery (%d bytes)", len(body))
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
    return Response(endpoint.seal(inbound, reply), mimetype="application/xml")


def _plain(text: str) -> Response:
    return Response(text, mimetype="text/plain")


def _process_once(inbound: Inbound) -> str:
    """Handle a delivery exactly once; a retry of it gets the first delivery's reply.

    WeChat retries up to three times when a reply is slow; :mod:`bot.delivery` dedupes in the
    same transaction as the work, and answers politely (keeping the message) when the
    database cannot be reached in time.
    """
    return delivery.process_once(inbound, _dispatch)


def _dispatch(inbound: Inbound) -> str:
    return _render(inbound, dialog.handle(inbound, datetime.now(UTC)))


def _render(inbound: Inbound, reply: dialog.Reply) -> str:
    """The passive reply's XML for the dialog's decision; "" means ``success`` (no reply)."""
    if current_app.config["HANDOFF_MODE"] == "wechat_kf":
        # WeChat's own customer-service tool takes the user; the notice goes by the outbox.
        if reply.outcome in {"handoff", "with_human"}:
            return transfer_reply(inbound, current_app.config["WECHAT_KF_ACCOUNT"])
    elif reply.outcome == "with_human":
        # The console's agent answers (or will): the bot stays silent, the line is kept.
        return ""
    if reply.outcome == "silent" or not reply.text:
        return ""
    return text_reply(inbound, reply.text)
