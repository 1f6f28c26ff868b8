"""Catalogue import: a JSON file of series -> models -> manuals, videos and firmware.

The format is documented in docs/catalogue-format.md. Import is all or nothing and upserts by
natural key (series code, model code, manual file, video URL, firmware version); children not
listed under a model are removed from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..imports import ImportError_, read_text
from .models import AUDIENCES, CATEGORIES, Firmware, Manual, ProductModel, Series, Video

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImportResult:
    """How many series and models the file had, and how many rows of each kind were written."""

    series: int
    models: int
    manuals: int
    videos: int
    firmware: int


def is_url(value: str) -> bool:
    """True for absolute http(s) URLs, False for media paths."""
    return value.startswith(("http://", "https://"))


def media_path(relative: str) -> Path | None:
    """The file under MEDIA_ROOT for a media path, or None if it would escape MEDIA_ROOT."""
    root = Path(current_app.config["MEDIA_ROOT"]).resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


def read_file(path: Path) -> dict[str, Any]:
    """Read and validate a catalogue JSON file; raise ImportError_ naming every problem."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportError_(
            [f"第 {exc.lineno} 行 / line {exc.lineno}: JSON 格式错误 / invalid JSON: {exc.msg}"]
        ) from exc
    return validate(data)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, where: str, zh: str, en: str) -> None:
        self.errors.append(f"{where}: {zh} / {en}")

    def text(self, obj: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        value = obj.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(f"{where}.{key}", "必须是非空字符串", "must be a non-empty string")
            return ""
        return value.strip()

    def items(self, obj: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(f"{where}.{key}", "必须是对象列表", "must be a list of objects")
            return []
        return value

    def location(self, obj: dict[str, Any], key: str, where: str, required: bool = True) -> str:
        value = self.text(obj, key, where, required)
        if value and not is_url(value) and media_path(value) is None:
            self.fail(f"{where}.{key}", "路径不能超出媒体目录", "path escapes MEDIA_ROOT")
        return value


def validate(data: Any) -> dict[str, Any]:
    """Check a parsed catalogue; return it normalised (codes, file sizes and hashes filled)."""
    check = _Checker()
    if not isinstance(data, dict):
        raise ImportError_(["$: 顶层必须是对象 / the top level must be an object"])
    series_codes: set[str] = set()
    model_codes: set[str] = set()
    for si, series in enumerate(check.items(data, "series", "$")):
        where = f"series[{si}]"
        code = check.text(series, "code", where)
        if code and not _CODE_RE.match(code):
            check.fail(f"{where}.code", "只能用字母、数字和 -_.", "letters, digits and -_. only")
        elif code in series_codes:
            check.fail(f"{where}.code", f"系列 {code} 重复", f"duplicate series {code}")
        series_codes.add(code)
        check.text(series, "name", where)
        check.text(series, "name_en", where)
        if series.get("category") not in CATEGORIES:
            check.fail(f"{where}.category", f"必须是 {'/'.join(CATEGORIES)}", "unknown category")
        months = series.get("warranty_months")
        if not isinstance(months, int) or isinstance(months, bool) or not 0 <= months <= 240:
            check.fail(f"{where}.warranty_months", "须为 0-240 的整数", "must be 0-240")
        for mi, model in enumerate(check.items(series, "models", where)):
            _validate_model(check, model, f"{where}.models[{mi}]", model_codes)
    if not series_codes and not check.errors:
        check.fail("$.series", "没有任何系列", "no series in the file")
    if check.errors:
        raise ImportError_(check.errors)
    return data


def _validate_model(check: _Checker, model: dict[str, Any], where: str, seen: set[str]) -> None:
    code = check.text(model, "code", where).upper()
    if code and not _CODE_RE.match(code):
        check.fail(f"{where}.code", "只能用字母、数字和 -_.", "letters, digits and -_. only")
    elif code in seen:
        check.fail(f"{where}.code", f"型号 {code} 重复", f"duplicate model {code}")
    seen.add(code)
    model["code"] = code
    check.text(model, "name", where)
    check.text(model, "name_en", where)
    check.text(model, "summary", where, required=False)
    check.location(model, "photo", where, required=False)
    files: set[str] = set()
    for i, manual in enumerate(check.items(model, "manuals", where)):
        w = f"{where}.manuals[{i}]"
        check.text(manual, "title", w)
        check.text(manual, "title_en", w)
        file = check.location(manual, "file", w)
        if file in files:
            check.fail(f"{w}.file", "文件重复", "duplicate file")
        files.add(file)
        _audience(check, manual, w)
        if file and not is_url(file):
            path = media_path(file)
            if path is None or not path.is_file():
                check.fail(f"{w}.file", f"找不到文件 {file}", "file not found under MEDIA_ROOT")
            else:
                manual["size_bytes"] = path.stat().st_size
    urls: set[str] = set()
    for i, video in enumerate(check.items(model, "videos", where)):
        w = f"{where}.videos[{i}]"
        check.text(video, "title", w)
        check.text(video, "title_en", w)
        url = check.location(video, "url", w)
        if url in urls:
            check.fail(f"{w}.url", "视频重复", "duplicate video")
        urls.add(url)
        check.location(video, "poster", w, required=False)
        duration = video.get("duration_s", 0)
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            check.fail(f"{w}.duration_s", "须为非负整数", "must be a whole number of seconds")
        _audience(check, video, w)
    versions: set[str] = set()
    for i, fw in enumerate(check.items(model, "firmware", where)):
        _validate_firmware(check, fw, f"{where}.firmware[{i}]", versions)


def _validate_firmware(check: _Checker, fw: dict[str, Any], where: str, seen: set[str]) -> None:
    version = check.text(fw, "version", where)
    if version in seen:
        check.fail(f"{where}.version", f"版本 {version} 重复", f"duplicate version {version}")
    seen.add(version)
    try:
        fw["released_on"] = date.fromisoformat(str(fw.get("released_on")))
    except ValueError:
        check.fail(f"{where}.released_on", "日期格式应为 YYYY-MM-DD", "must be YYYY-MM-DD")
    check.text(fw, "notes", where, required=False)
    url = check.location(fw, "url", where)
    sha = str(fw.get("sha256") or "").strip().lower()
    if url and not is_url(url):
        # A local file is hashed here, so a checksum typed by hand cannot drift from the file.
        path = media_path(url)
        if path is None or not path.is_file():
            check.fail(f"{where}.url", f"找不到文件 {url}", "file not found under MEDIA_ROOT")
            return
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if sha and sha != actual:
            check.fail(f"{where}.sha256", "与文件不符", "does not match the file")
        sha = actual
    if not _SHA256_RE.match(sha):
        check.fail(f"{where}.sha256", "须为 64 位十六进制", "must be 64 hex digits")
    fw["sha256"] = sha


def _audience(check: _Checker, obj: dict[str, Any], where: str) -> None:
    audience = obj.setdefault("audience", "all")
    if audience not in AUDIENCES:
        check.fail(f"{where}.audience", f"只能是 {'/'.join(AUDIENCES)}", "invalid audience")


def apply(data: dict[str, Any]) -> ImportResult:
    """Upsert a validated catalogue into the current session (the caller commits)."""
    counts = {"series": 0, "models": 0, "manuals": 0, "videos": 0, "firmware": 0}
    existing_series = {s.code: s for s in db.session.scalars(select(Series))}
    existing_models = {m.code: m for m in db.session.scalars(select(ProductModel))}
    for s in data["series"]:
        series = existing_series.get(s["code"]) or Series(code=s["code"])
        series.name, series.name_en = s["name"].strip(), s["name_en"].strip()
        series.category, series.warranty_months = s["category"], s["warranty_months"]
        db.session.add(series)
        counts["series"] += 1
        for m in s.get("models", []):
            model = existing_models.get(m["code"]) or ProductModel(code=m["code"])
            model.series = series
            model.name, model.name_en = m["name"].strip(), m["name_en"].strip()
            model.summary = (m.get("summary") or "").strip()
            model.photo = (m.get("photo") or "").strip() or None
            db.session.add(model)
            counts["models"] += 1
            _sync(model.manuals, m.get("manuals", []), "file", Manual, _manual_fields)
            _sync(model.videos, m.get("videos", []), "url", Video, _video_fields)
            _sync(model.firmware, m.get("firmware", []), "version", Firmware, _firmware_fields)
            counts["manuals"] += len(m.get("manuals", []))
            counts["videos"] += len(m.get("videos", []))
            counts["firmware"] += len(m.get("firmware", []))
    return ImportResult(**counts)


def _sync(
    current: list[Any], wanted: list[dict[str, Any]], key: str, cls: Any, fields: Any
) -> None:
    """Make the child list match ``wanted``: update by natural key, add new, drop the rest."""
    by_key = {getattr(child, key): child for child in current}
    keep = []
    for sort, item in enumerate(wanted):
        child = by_key.pop(item[key].strip(), None) or cls()
        for name, value in fields(item, sort).items():
            if getattr(child, name) != value:
                setattr(child, name, value)
        keep.append(child)
    current[:] = keep  # delete-orphan removes what is no longer listed


def _manual_fields(item: dict[str, Any], sort: int) -> dict[str, Any]:
    return {
        "title": item["title"].strip(),
        "title_en": item["title_en"].strip(),
        "file": item["file"].strip(),
        "size_bytes": int(item.get("size_bytes") or 0),
        "audience": item["audience"],
        "sort": sort,
    }


def _video_fields(item: dict[str, Any], sort: int) -> dict[str, Any]:
    return {
        "title": item["title"].strip(),
        "title_en": item["title_en"].strip(),
        "url": item["url"].strip(),
        "poster": (item.get("poster") or "").strip() or None,
        "duration_s": int(item.get("duration_s") or 0),
        "audience": item["audience"],
        "sort": sort,
    }


def _firmware_fields(item: dict[str, Any], sort: int) -> dict[str, Any]:
    return {
        "version": item["version"].strip(),
        "released_on": item["released_on"],
        "notes": (item.get("notes") or "").strip(),
        "sha256": item["sha256"],
        "url": item["url"].strip(),
    }
