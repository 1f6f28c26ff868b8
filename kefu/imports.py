"""What every file import shares: all-or-nothing errors, and reading text as users save it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click


class ImportError_(Exception):
    """A file that cannot be imported; ``errors`` names each bad line, and nothing is saved."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def decode(raw: bytes, spreadsheet: bool = False) -> str:
    """UTF-8 text (a BOM is dropped); with ``spreadsheet``, GBK text too.

    Excel on Chinese Windows saves CSV as GBK unless told otherwise, so files that come from a
    spreadsheet fall back to GB18030, a superset of GBK. Raises UnicodeDecodeError.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if not spreadsheet:
            raise
        return raw.decode("gb18030")


def read_text(path: Path, spreadsheet: bool = False) -> str:
    """The text of ``path`` (see :func:`decode`); unreadable files raise ImportError_."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportError_([f"{path}: 无法读取文件 / cannot read file: {exc.strerror}"]) from exc
    try:
        return decode(raw, spreadsheet)
    except UnicodeDecodeError as exc:
        expected = "UTF-8 或 GBK / UTF-8 or GBK" if spreadsheet else "UTF-8"
        raise ImportError_([f"{path}: 文件编码不是 {expected} / wrong text encoding"]) from exc


def fail(errors: list[str], what: str) -> NoReturn:
    """Print an import's errors and exit 1 (CLI): nothing of the file was imported."""
    for line in errors:
        click.echo(line, err=True)
    click.echo(f"未导入任何{what} / nothing imported ({len(errors)} error(s)).", err=True)
    sys.exit(1)
