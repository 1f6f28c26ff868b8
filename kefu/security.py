"""App-wide request hygiene: NUL bytes refused, security headers on every response.

Registered by the factory so every front door (the self-service pages, the console, the demo
chat, the webhook) gets the same treatment without repeating it.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import BadRequest

# Scripts and styles come from our own static files only: no inline script or style attribute
# can run, so injected markup stays inert. Media may come from the maker's CDN (https).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "media-src 'self' https:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Device pages are capability links (whoever has the URL sees the device): never let the URL
# leak to another site through the Referer header. Everything under these paths names a device
# (or, under /v/, a video call).
CAPABILITY_PATHS = ("/d/", "/01/", "/v/")
HSTS = "max-age=31536000; includeSubDomains"
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class InvalidCharacters(BadRequest):
    """A path, query or form field with a NUL byte: no database stores one, no person types one."""

    description = "The request contains a NUL character."


def _has_nul() -> bool:
    if "\x00" in request.path or "%00" in request.query_string.decode("latin-1"):
        return True
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            return True
    # The webhook reads its body itself (XML, whatever the Content-Type says): parsing it as a
    # form here would consume it.
    if (
        request.method in {"POST", "PUT", "PATCH"}
        and request.mimetype in _FORM_TYPES
        and request.blueprint != "bot"
    ):
        for key, value in request.form.items(multi=True):
            if "\x00" in key or "\x00" in value:
                return True
        for key, upload in request.files.items(multi=True):
            if "\x00" in key or "\x00" in (upload.filename or ""):
                return True
    return False


def refuse_nul_bytes() -> None:
    """Answer 400 (a clear page) before any view sees a NUL byte (PostgreSQL cannot store it)."""
    if _has_nul():
        raise InvalidCharacters()


def security_headers(response: Response) -> Response:
    """nosniff everywhere; CSP, framing, referrer and HSTS on the pages people open."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.blueprint == "bot":
        # WeChat's servers read the webhook's XML; browser policies mean nothing to them.
        return response
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(CAPABILITY_PATHS):
        headers["Referrer-Policy"] = "no-referrer"
    else:
        headers.setdefault("Referrer-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.blueprint == "simulator":
        # The demo chat shows a conversation: never kept by a browser or proxy cache.
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Register the NUL check and the header hook on ``app``."""
    app.before_request(refuse_nul_bytes)
    app.after_request(security_headers)
