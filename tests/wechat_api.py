"""A fake WeChat API server on loopback, so no test ever calls WeChat."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass
class FakeWeChatApi:
    """Records calls; answers token, menu, custom-message and OAuth endpoints like WeChat."""

    url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    token_fetches: int = 0
    delay: float = 0.0
    oauth_openids: dict[str, str] = field(default_factory=dict)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if self.delay:
            time.sleep(self.delay)
        args = request.args.to_dict()
        body = json.loads(request.get_data() or b"{}")
        self.calls.append((request.path, {"args": args, "body": body}))
        if request.path == "/cgi-bin/token":
            self.token_fetches += 1
            result: dict[str, Any] = {
                "access_token": f"TOKEN{self.token_fetches}",
                "expires_in": 7200,
            }
        elif request.path == "/sns/oauth2/access_token":
            openid = self.oauth_openids.get(args.get("code", ""))
            result = (
                # WeChat's answer carries a refresh_token too; wechatpy reads it unconditionally.
                {
                    "access_token": "web",
                    "expires_in": 7200,
                    "refresh_token": "refresh",
                    "openid": openid,
                    "scope": "snsapi_base",
                }
                if openid
                else {"errcode": 40029, "errmsg": "invalid code"}
            )
        elif args.get("access_token", "").startswith("TOKEN"):
            result = {"errcode": 0, "errmsg": "ok"}
        else:
            result = {"errcode": 40001, "errmsg": "invalid credential"}
        return Response(json.dumps(result), mimetype="application/json")(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Keep the test output free of the fake server's access log."""


@contextmanager
def serve_fake_wechat_api() -> Iterator[FakeWeChatApi]:
    """Run a :class:`FakeWeChatApi` on 127.0.0.1 for the duration of the block."""
    api = FakeWeChatApi()
    server = make_server("127.0.0.1", 0, api, threaded=True, request_handler=_QuietHandler)
    api.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
