"""QR codes of device links: module matrix, PNG and SVG (error correction M, 4-module margin)."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
import qrcode
import qrcode.image.svg
from numpy.lib.stride_tricks import sliding_window_view
from qrcode.constants import ERROR_CORRECT_M

# ISO/IEC 18004 asks for a light margin of at least 4 modules around the symbol.
QUIET_ZONE = 4
_FINDER_LIKE = (
    np.array([1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0], dtype=bool),
    np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1], dtype=bool),
)


class _Symbol(qrcode.QRCode):  # type: ignore[misc]
    """A QRCode that remembers which modules carry data, so masks can be swapped afterwards."""

    data_positions: list[list[bool]]

    def map_data(self, data: Any, mask_pattern: int) -> None:
        self.data_positions = [[m is None for m in row] for row in self.modules]
        super().map_data(data, mask_pattern)


@cache
def _mask_stack(size: int) -> np.ndarray:
    """The 8 mask patterns of ISO/IEC 18004 for a symbol of ``size`` modules."""
    rows, cols = np.indices((size, size))
    return np.stack(
        [
            (rows + cols) % 2 == 0,
            rows % 2 == 0,
            cols % 3 == 0,
            (rows + cols) % 3 == 0,
            (rows // 2 + cols // 3) % 2 == 0,
            (rows * cols) % 2 + (rows * cols) % 3 == 0,
            ((rows * cols) % 2 + (rows * cols) % 3) % 2 == 0,
            ((rows * cols) % 3 + (rows + cols) % 2) % 2 == 0,
        ]
    )


def _penalty(m: np.ndarray) -> int:
    """The ISO/IEC 18004 mask penalty (rules N1-N4), vectorised."""
    n = m.shape[0]
    score = 0
    for a in (m, m.T):
        # N1: runs of five or more same-coloured modules in a row; a sentinel breaks rows apart.
        padded = np.full((n, n + 1), 2, dtype=np.int8)
        padded[:, :n] = a
        flat = padded.ravel()
        edges = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1], [True])))
        lengths = np.diff(edges)
        score += int((lengths[lengths >= 5] - 2).sum())
        # N3: finder-like 1:1:3:1:1 patterns with four light modules on one side.
        windows = sliding_window_view(a, 11, axis=1)
        for pattern in _FINDER_LIKE:
            score += 40 * int((windows == pattern).all(axis=2).sum())
    # N2: 2x2 blocks of one colour.
    top = m[:-1, :-1]
    block = (top == m[1:, :-1]) & (top == m[:-1, 1:]) & (top == m[1:, 1:])
    score += 3 * int(block.sum())
    # N4: 10 points for every 5% the dark share strays from half.
    dark = int(m.sum()) * 100 // (n * n)
    score += 10 * (abs(dark - 50) // 5)
    return score


def _code(url: str) -> qrcode.QRCode:
    # Level M survives ~15% damage: a scuffed sticker on a device still scans.
    code = _Symbol(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE, box_size=10, mask_pattern=0)
    code.add_data(url)
    # One data mapping (mask 0); the library would map the data eight times to pick a mask,
    # which made labels too slow, so the masks are applied and scored here with numpy.
    code.make(fit=True)
    data = np.array(code.data_positions, dtype=bool)
    masks = _mask_stack(code.modules_count)
    unmasked = np.array(code.modules, dtype=bool) ^ (masks[0] & data)
    best: list[list[bool]] | None = None
    best_score = 0
    for k in range(8):
        code.modules = (unmasked ^ (masks[k] & data)).tolist()
        code.setup_type_info(False, k)  # format bits name the mask, so they change with it
        score = _penalty(np.array(code.modules, dtype=bool))
        if best is None or score < best_score:
            best, best_score = code.modules, score
    code.modules = best
    return code


def matrix(url: str) -> list[list[bool]]:
    """The symbol's modules (True = dark), without the quiet zone."""
    return [list(row) for row in _code(url).modules]


def png(url: str, box_size: int = 10) -> bytes:
    """A black-on-white PNG of ``url``'s QR code, ``box_size`` pixels per module."""
    code = _code(url)
    code.box_size = box_size
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def svg(url: str) -> str:
    """A standalone SVG of ``url``'s QR code (one path; 1 mm per module)."""
    image = _code(url).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    return image.to_string(encoding="unicode")
