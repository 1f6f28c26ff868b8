"""Reading a device label from a photo: kefu's own QR link, a GS1 Digital Link, or a serial
in a Code 128 or DataMatrix barcode (zxing-cpp, which also finds rotated codes)."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

import zxingcpp
from PIL import Image, ImageOps

from ..catalog import devices as registry
from ..catalog import gs1
from ..catalog.models import Device

FORMATS = (
    zxingcpp.BarcodeFormat.QRCode,
    zxingcpp.BarcodeFormat.DataMatrix,
    zxingcpp.BarcodeFormat.Code128,
)
# A phone photo has 12-50 megapixels; anything far beyond is not a photo (a decompression bomb).
MAX_PIXELS = 60_000_000
_GS1_PATH_RE = re.compile(r"/01/(\d{8,14})/21/([^/?#]+)")
_TOKEN_PATH_RE = re.compile(r"/d/([A-Za-z0-9_-]{8,64})$")


@dataclass(frozen=True)
class LabelReading:
    """What was found on a label: the texts decoded and the device they name, if any."""

    texts: tuple[str, ...]
    device: Device | None
    how: str  # "link", "gs1", "serial" or "" when nothing matched
    serial: str | None = None  # a serial read but not in the registry


def decode(data: bytes) -> list[str]:
    """The texts of every QR, DataMatrix and Code 128 symbol in a photo."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError("too many pixels for a label photo")
            image = ImageOps.exif_transpose(opened).convert("L")
    texts = _read(image)
    if not texts and max(image.size) > 1600:
        # Phone photos are large; a smaller copy decodes faster and often better.
        small = image.copy()
        small.thumbnail((1600, 1600))
        texts = _read(small)
    return texts


# zxing-cpp turns a photo by right angles itself; a label photographed askew also needs the
# angles in between for its Code 128 (a 2D code reads at any angle).
_ANGLES = (0, 20, -20, 40, -40)


def _read(image: Image.Image) -> list[str]:
    for angle in _ANGLES:
        turned = (
            image
            if angle == 0
            else image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
        )
        results = zxingcpp.read_barcodes(
            turned, formats=FORMATS, try_rotate=True, try_downscale=True
        )
        texts = [r.text for r in results if r.valid and r.text]
        if texts:
            return texts
    return []


def identify(texts: list[str], public_base_url: str) -> LabelReading:
    """The device the decoded texts name: link first, then GS1, then a printed serial."""
    found = tuple(texts)
    for text in texts:
        parts = urlsplit(text.strip())
        if parts.scheme in {"http", "https"}:
            match = _TOKEN_PATH_RE.search(parts.path)
            if match and text.startswith(public_base_url.rstrip("/") + "/d/"):
                device = registry.by_token(match.group(1))
                if device is not None:
                    return LabelReading(found, device, "link")
            match = _GS1_PATH_RE.search(parts.path)
            if match:
                device = gs1.resolve(match.group(1), match.group(2))
                if device is not None:
                    return LabelReading(found, device, "gs1")
    unknown = None
    for text in texts:
        serial = registry.normalise_serial(text)
        if registry.SERIAL_RE.match(serial):
            device = registry.by_serial(serial)
            if device is not None:
                return LabelReading(found, device, "serial")
            unknown = unknown or serial
    return LabelReading(found, None, "", unknown)
