"""The baseline of benchmarks/webhook_throughput.py: a bare Flask + wechatpy echo webhook.

It does what any WeChat webhook must (check the signature, decrypt, parse, build and encrypt a
text reply) and nothing else, so kefu's throughput can be read against what the server,
Flask and the protocol cost on this machine: ``gunicorn benchmarks.echo_app:app``.
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

TOKEN = os.environ["WECHAT_TOKEN"]
crypto = WeChatCrypto(TOKEN, os.environ["WECHAT_ENCODING_AES_KEY"], os.environ["WECHAT_APP_ID"])
app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Up."""
    return {"status": "ready"}


@app.post("/wechat")
def receive() -> Response:
    """Echo the message's text back, encrypted."""
    args = request.args
    try:
        check_signature(TOKEN, args["signature"], args["timestamp"], args["nonce"])
    except Exception:
        abort(403)
    xml = crypto.decrypt_message(
        request.get_data(), args["msg_signature"], args["timestamp"], args["nonce"]
    )
    message = parse_message(xml)
    reply = TextReply(content=getattr(message, "content", ""), message=message).render()
    return Response(crypto.encrypt_message(reply, args["nonce"]), mimetype="application/xml")
