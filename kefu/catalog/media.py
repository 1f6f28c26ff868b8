"""Which files under MEDIA_ROOT are published, to whom, and the unguessable names of private ones.

``/media/`` serves only what the catalogue publishes: a model's photo, its manuals, video files
and posters, firmware, and the official account's QR image. Files the catalogue marks
``audience: installer`` are never served under their own path; approved installers get them at
``/media/i/<key>/<file name>``, where the key is derived from SECRET_KEY and the path, so a
name cannot be guessed from the catalogue, the demo or another installation.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath

from flask import current_app
from sqlalchemy import or_, select

from ..extensions import db
from .catalogue import is_url
from .models import Firmware, Manual, ProductModel, Video

PUBLIC = "all"
INSTALLER = "installer"
KEY_LENGTH = 32  # hex characters: 128 bits


def private_key(path: str) -> str:
    """The unguessable key under which the installer-only file ``path`` is served."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, b"kefu-media:" + path.encode(), hashlib.sha256).hexdigest()
    return digest[:KEY_LENGTH]


def audience_of(path: str) -> str | None:
    """``"all"`` when the catalogue publishes ``path`` to everyone, ``"installer"`` when only to
    installers, None when it does not publish it (then it is not served at all)."""
    if path and path == (current_app.config.get("WECHAT_OA_QR") or "").lstrip("/"):
        return PUBLIC
    # Catalogues may write a media path with or without a leading slash.
    forms = [path, "/" + path]
    audiences: set[str] = set()
    audiences.update(db.session.scalars(select(Manual.audience).where(Manual.file.in_(forms))))
    audiences.update(
        db.session.scalars(
            select(Video.audience).where(or_(Video.url.in_(forms), Video.poster.in_(forms)))
        )
    )
    if PUBLIC in audiences:
        return PUBLIC
    public = db.session.scalar(
        select(ProductModel.id).where(ProductModel.photo.in_(forms)).limit(1)
    ) or db.session.scalar(select(Firmware.id).where(Firmware.url.in_(forms)).limit(1))
    if public is not None:
        return PUBLIC
    return INSTALLER if audiences else None


def private_path(key: str, name: str) -> str | None:
    """The installer-only file served as ``/media/i/<key>/<name>``, or None."""
    if len(key) != KEY_LENGTH:
        return None
    candidates = set(
        db.session.scalars(
            select(Manual.file).where(
                Manual.audience == INSTALLER, Manual.file.endswith(name, autoescape=True)
            )
        )
    )
    for url, poster in db.session.execute(
        select(Video.url, Video.poster).where(Video.audience == INSTALLER)
    ):
        candidates.update(p for p in (url, poster) if p)
    for path in candidates:
        if is_url(path) or posixpath.basename(path) != name:
            continue
        if hmac.compare_digest(private_key(path.lstrip("/")), key):
            return path.lstrip("/")
    return None
