"""A4 label sheets: one QR code per device with its model and serial printed underneath."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from .devices import device_url
from .models import Device
from .qr import QUIET_ZONE, matrix

COLUMNS, ROWS = 4, 8
MARGIN_X, MARGIN_Y = 5 * mm, 8.5 * mm
CELL_W = (A4[0] - 2 * MARGIN_X) / COLUMNS  # 50 mm
CELL_H = (A4[1] - 2 * MARGIN_Y) / ROWS  # 35 mm
TEXT_H = 8 * mm
# Phone cameras read 0.4 mm modules reliably at label distance; smaller ones get flaky.
MIN_MODULE = 0.4 * mm
MAX_MODULE = 0.6 * mm
FONT = "STSong-Light"  # reportlab's built-in CID font: Chinese text without shipping a font file
GUIDE = Color(0.8, 0.8, 0.8)

Progress = Callable[[int, int], None]


class LabelError(ValueError):
    """A label that cannot be printed to spec (the link is too long for the label)."""


@dataclass(frozen=True)
class SheetResult:
    """What was rendered."""

    labels: int
    pages: int


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def render(
    devices: Sequence[Device],
    out_path: Path | str,
    progress: Progress | None = None,
    url_for: Callable[[Device], str] = device_url,
) -> SheetResult:
    """Write an A4 PDF with one label per device, 4 x 8 to a page; return labels and pages."""
    font = _font()
    canvas = Canvas(str(out_path), pagesize=A4, pageCompression=1)
    canvas.setTitle("Device labels")
    per_page = COLUMNS * ROWS
    total = len(devices)
    for index, device in enumerate(devices):
        slot = index % per_page
        if slot == 0 and index:
            canvas.showPage()
        col, row = slot % COLUMNS, slot // COLUMNS
        x0 = MARGIN_X + col * CELL_W
        y0 = A4[1] - MARGIN_Y - (row + 1) * CELL_H
        _label(canvas, font, x0, y0, url_for(device), device)
        if progress is not None:
            progress(index + 1, total)
    canvas.save()
    return SheetResult(labels=total, pages=max(1, -(-total // per_page)))


def _label(canvas: Canvas, font: str, x0: float, y0: float, url: str, device: Device) -> None:
    modules = matrix(url)
    size = len(modules) + 2 * QUIET_ZONE
    module = min(MAX_MODULE, (CELL_H - TEXT_H - 2 * mm) / size)
    if module < MIN_MODULE:
        raise LabelError(
            f"链接太长，二维码模块小于 0.4 mm / the link is too long for a label: {url}"
        )
    # Cutting guide at the cell's edge, well outside the QR code's quiet zone.
    canvas.setStrokeColor(GUIDE)
    canvas.setLineWidth(0.2)
    canvas.rect(x0, y0, CELL_W, CELL_H, stroke=1, fill=0)
    side = size * module
    left = x0 + (CELL_W - side) / 2
    top = y0 + CELL_H - 1 * mm
    canvas.setFillColor(white)
    canvas.rect(left, top - side, side, side, stroke=0, fill=1)
    # One filled path per code, dark runs of a row merged into one rectangle: small and fast.
    path = canvas.beginPath()
    origin_x = left + QUIET_ZONE * module
    origin_y = top - QUIET_ZONE * module
    for r, line in enumerate(modules):
        c, n = 0, len(line)
        while c < n:
            if not line[c]:
                c += 1
                continue
            start = c
            while c < n and line[c]:
                c += 1
            path.rect(
                origin_x + start * module, origin_y - (r + 1) * module, (c - start) * module, module
            )
    canvas.setFillColor(black)
    canvas.drawPath(path, stroke=0, fill=1)
    model = device.model
    text_top = top - side - 1 * mm
    _centred(canvas, font, f"{model.code} {model.name}", x0, text_top - 3 * mm, 7.5)
    _centred(canvas, font, f"SN {device.serial}", x0, text_top - 6.5 * mm, 7.5)


def _centred(canvas: Canvas, font: str, text: str, x0: float, y: float, size: float) -> None:
    """Draw ``text`` centred in the cell, shrunk (then cut) to fit its width."""
    width = CELL_W - 3 * mm
    while size > 5 and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 0.5
    while len(text) > 1 and pdfmetrics.stringWidth(text, font, size) > width:
        text = text[:-1]
    canvas.setFont(font, size)
    canvas.drawCentredString(x0 + CELL_W / 2, y, text)
