"""Proof-of-purchase photos: checked, cleaned and stored where only staff can reach them.

A photo is accepted only when Pillow can verify and decode it, within size and pixel caps (a
small file that unpacks into gigapixels, a "decompression bomb", is refused before decoding).
It is re-encoded, which drops EXIF and with it the GPS position of the customer's home, and
stored under its SHA-256 in ``PROOF_ROOT``, outside the web root: the console serves it to
staff, nothing serves it to the public.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BilingualError

FORMATS = {"JPEG", "PNG", "WEBP", "MPO"}
MAX_SIDE = 2560  # enough to read a receipt; keeps stored photos small


class PhotoError(BilingualError):
    """A refused photo, with the reason in Chinese and English."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(zh, en, detail=code)
        self.code = code


@dataclass(frozen=True)
class StoredPhoto:
    """A proof photo as stored."""

    sha256: str
    width: int
    height: int
    size: int


def max_bytes() -> int:
    """Largest upload accepted (``PROOF_MAX_BYTES``)."""
    return int(current_app.config.get("PROOF_MAX_BYTES", 10 * 1024 * 1024))


def max_pixels() -> int:
    """Most pixels a photo may have (``PROOF_MAX_PIXELS``)."""
    return int(current_app.config.get("PROOF_MAX_PIXELS", 40_000_000))


def root() -> Path:
    """Where proof photos are kept (``PROOF_ROOT``), never under MEDIA_ROOT."""
    folder = Path(
        current_app.config.get("PROOF_ROOT") or Path(current_app.instance_path) / "proofs"
    ).resolve()
    media = Path(current_app.config["MEDIA_ROOT"]).resolve()
    if folder == media or media in folder.parents:
        raise RuntimeError("PROOF_ROOT must not be inside MEDIA_ROOT (it would be public)")
    return folder


def _refuse(code: str) -> PhotoError:
    messages = {
        "too_large": (
            f"照片太大，请上传不超过 {max_bytes() // (1024 * 1024)} MB 的照片。",
            f"The photo is too large; at most {max_bytes() // (1024 * 1024)} MB.",
        ),
        "too_many_pixels": (
            "照片分辨率过高，请重新拍摄或截图后上传。",
            "The photo has too many pixels; take or crop it again.",
        ),
        "not_image": (
            "这不是可以识别的图片，请上传 JPG 或 PNG 照片。",
            "That is not a readable image; upload a JPG or PNG photo.",
        ),
        "empty": ("没有收到照片，请重新选择。", "No photo arrived; choose it again."),
    }
    zh, en = messages[code]
    return PhotoError(code, zh, en)


def clean(data: bytes) -> tuple[bytes, int, int]:
    """Verify and re-encode a photo as JPEG without metadata; (bytes, width, height)."""
    if not data:
        raise _refuse("empty")
    if len(data) > max_bytes():
        raise _refuse("too_large")
    with warnings.catch_warnings():
        # Pillow warns, then errors, on huge images; either way it is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in FORMATS:
                    raise _refuse("not_image")
                width, height = probe.size
                if width * height > max_pixels():
                    raise _refuse("too_many_pixels")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
                image = image.convert("RGB")
        except PhotoError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _refuse("too_many_pixels") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise _refuse("not_image") from exc
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    # No exif= argument: the re-encoded file carries no EXIF (no GPS, no camera serial).
    image.save(out, "JPEG", quality=88, optimize=True)
    return out.getvalue(), image.width, image.height


def store(data: bytes) -> StoredPhoto:
    """Clean a photo and keep it under its content hash; the same photo is stored once."""
    cleaned, width, height = clean(data)
    digest = hashlib.sha256(cleaned).hexdigest()
    path = path_for(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(cleaned)
        tmp.replace(path)
    return StoredPhoto(digest, width, height, len(cleaned))


def path_for(digest: str) -> Path:
    """Where the photo with this SHA-256 lives (for the staff console to serve)."""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("not a SHA-256")
    return root() / digest[:2] / f"{digest}.jpg"
