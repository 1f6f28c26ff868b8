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
    """Records calls; answers token, menu, custom-message and OAuth endpoints like WeChat.

    Tokens come from ``/cgi-bin/stable_token`` (``token_fetches`` counts them; the legacy
    ``/cgi-bin/token`` is counted in ``legacy_token_fetches``). ``errors`` injects errcodes: a
    path maps to a list of codes answered, one per call, before normal answers resume;
    ``always_errors`` answers a path with one code for as long as it is set. ``revoked`` tokens
    get 40001, as a token invalidated elsewhere does.
    """

    url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    token_fetches: int = 0
    legacy_token_fetches: int = 0
    delay: float = 0.0
    token_delay: float = 0.0
    oauth_openids: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[int]] = field(default_factory=dict)
    always_errors: dict[str, int] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    # Temporary media by MediaId, served by /cgi-bin/media/get (photos users sent).
    media: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _error(self, path: str) -> int | None:
        with self._lock:
            if path in self.always_errors:
                return self.always_errors[path]
            queued = self.errors.get(path)
            if queued:
                return queued.pop(0)
        return None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if self.delay:
            time.sleep(self.delay)
        args = request.args.to_dict()
        body = json.loads(request.get_data() or b"{}")
        self.calls.append((request.path, {"args": args, "body": body}))
        code = self._error(request.path)
        if code is not None:
            result: dict[str, Any] = {"errcode": code, "errmsg": f"injected {code}"}
        elif request.path == "/cgi-bin/stable_token":
            if request.method != "POST" or body.get("grant_type") != "client_credential":
                result = {"errcode": 40002, "errmsg": "invalid grant_type"}
            else:
                if self.token_delay:
                    time.sleep(self.token_delay)  # widens the window for racing fetches
                with self._lock:
                    self.token_fetches += 1
                    number = self.token_fetches
                result = {"access_token": f"TOKEN{number}", "expires_in": 7200}
        elif request.path == "/cgi-bin/token":
            self.legacy_token_fetches += 1
            result = {"access_token": "LEGACY", "expires_in": 7200}
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
        elif (
            request.path == "/cgi-bin/media/get"
            and args.get("access_token", "").startswith("TOKEN")
            and args.get("media_id") in self.media
        ):
            return Response(self.media[args["media_id"]], mimetype="image/jpeg")(
                environ, start_response
            )
        elif request.path == "/cgi-bin/media/get" and args.get("access_token", "").startswith(
            "TOKEN"
        ):
            result = {"errcode": 40007, "errmsg": "invalid media_id"}
        elif args.get("access_token", "") in self.revoked:
            result = {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
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
