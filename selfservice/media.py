"""Files under MEDIA_ROOT: what the catalogue publishes, installer-only files to installers."""

from __future__ import annotations

import posixpath

from flask import Response, abort, current_app, send_from_directory, url_for

from kefu.catalog import media as published

from .blueprint import bp, current_installer


def media_href(value: str, audience: str = published.PUBLIC) -> str:
    """A media field as a link: absolute URLs as they are, files under /media/ (installer-only
    files under their unguessable private name)."""
    if published.is_url(value):
        return value
    path = value.lstrip("/")
    if audience == published.INSTALLER:
        return url_for(
            "selfservice.private_media",
            key=published.private_key(path),
            name=posixpath.basename(path),
        )
    return url_for("selfservice.media", filename=path)


bp.add_app_template_filter(media_href, "media")


@bp.get("/media/<path:filename>")
def media(filename: str) -> Response:
    """A file the catalogue publishes to everyone; anything else is the same 404."""
    # send_from_directory refuses paths that escape the folder (404), so ../ cannot reach out.
    if published.audience_of(filename) != published.PUBLIC:
        abort(404)
    return send_from_directory(current_app.config["MEDIA_ROOT"], filename, max_age=3600)


@bp.get("/media/i/<key>/<name>")
def private_media(key: str, name: str) -> Response:
    """An installer-only file, for approved installers only (others get the same 404)."""
    if current_installer() is None:
        abort(404)
    path = published.private_path(key, name)
    if path is None:
        abort(404)
    response = send_from_directory(current_app.config["MEDIA_ROOT"], path, max_age=0)
    # Not for shared caches: the next visitor through a proxy may not be an installer.
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response
