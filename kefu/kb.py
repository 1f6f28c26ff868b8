"""The knowledge base: import and export (JSON Lines or CSV), and the per-process search index."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from .catalog.models import CATEGORIES, KbEntryProduct
from .extensions import db
from .imports import ImportError_, read_text
from .models import KbEntry, Setting, utcnow
from .nlu import KbDoc, KbIndex

AUDIENCES = ("all", "end_user", "installer")
FIELDS = ("id", "question", "alternates", "answer", "audience", "tags", "products")
# Entry ids and products (a model code such as "AS-C3H" or a category such as "camera", which
# ties an entry to device pages) are both short ASCII slugs.
_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
REVISION_KEY = "kb_revision"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """A validated knowledge-base row, ready to upsert."""

    id: str
    question: str
    alternates: list[str]
    answer: str
    audience: str
    tags: list[str]
    products: list[str] = field(default_factory=list)


def read_file(path: Path) -> list[Row]:
    """Read and validate a .jsonl/.json or .csv file; raise ImportError_ naming every bad line."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".json", ".ndjson"}:
        raise ImportError_([f"{path}: 只支持 .jsonl 或 .csv / only .jsonl or .csv files"])
    text = read_text(path, spreadsheet=suffix == ".csv")
    records = _csv_records(text) if suffix == ".csv" else _jsonl_records(text)
    return validate(records)


def _jsonl_records(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"JSON 格式错误 / invalid JSON: {exc.msg} (column {exc.colno})"
            continue
        yield number, value if isinstance(value, dict) else "不是 JSON 对象 / not a JSON object"


def _csv_records(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        name for name in ("id", "question", "answer") if name not in (reader.fieldnames or [])
    ]
    if missing:
        yield 1, f"缺少列 / missing columns: {', '.join(missing)}"
        return
    for record in reader:
        # line_num counts physical lines, so quoted multi-line answers still name the right line.
        number = reader.line_num
        if None in record:
            yield number, "列数多于表头 / more fields than the header"
            continue
        for key in ("alternates", "tags", "products"):
            value = record.get(key) or ""
            record[key] = [part.strip() for part in value.split("|") if part.strip()]
        yield number, record


def validate(records: Iterable[tuple[int, dict[str, Any] | str]]) -> list[Row]:
    """Check every record; collect all errors so the user can fix the file in one pass."""
    errors: list[str] = []
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for number, record in records:
        if isinstance(record, str):
            errors.append(f"第 {number} 行 / line {number}: {record}")
            continue
        problems: list[str] = []
        entry_id = str(record.get("id") or "").strip()
        if not _SLUG_RE.match(entry_id):
            problems.append("id 必须是 1-64 位字母数字 / id must be an ASCII slug")
        elif entry_id in seen:
            problems.append(
                f"id 与第 {seen[entry_id]} 行重复 / duplicate id of line {seen[entry_id]}"
            )
        question = _text(record.get("question"))
        answer = _text(record.get("answer"))
        if not question:
            problems.append("question 不能为空 / question is empty")
        if not answer:
            problems.append("answer 不能为空 / answer is empty")
        audience = str(record.get("audience") or "all").strip()
        if audience not in AUDIENCES:
            problems.append(
                f"audience 只能是 {'/'.join(AUDIENCES)} / invalid audience {audience!r}"
            )
        alternates = _string_list(record.get("alternates"), "alternates", problems)
        tags = _string_list(record.get("tags"), "tags", problems)
        products = _products(_string_list(record.get("products"), "products", problems), problems)
        if problems:
            errors.append(f"第 {number} 行 / line {number}: " + "; ".join(problems))
            continue
        seen[entry_id] = number
        rows.append(Row(entry_id, question, alternates, answer, audience, tags, products))
    if errors:
        raise ImportError_(errors)
    if not rows:
        raise ImportError_(["文件中没有条目 / the file has no entries"])
    return rows


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _string_list(value: Any, name: str, problems: list[str]) -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{name} 必须是字符串列表 / {name} must be a list of strings")
        return []
    return [v.strip() for v in value if v.strip()]


def _products(values: list[str], problems: list[str]) -> list[str]:
    """Categories in lower case, model codes in upper case (as the catalogue stores them)."""
    result: list[str] = []
    for value in values:
        if not _SLUG_RE.match(value):
            problems.append(f"products 含无效值 / invalid product {value!r}")
            continue
        product = value.lower() if value.lower() in CATEGORIES else value.upper()
        if product not in result:
            result.append(product)
    return result


def _stored_products(ids: list[str]) -> dict[str, list[str]]:
    stored: dict[str, list[str]] = {}
    for entry_id, product in db.session.execute(
        select(KbEntryProduct.kb_entry_id, KbEntryProduct.product)
        .where(KbEntryProduct.kb_entry_id.in_(ids))
        .order_by(KbEntryProduct.product)
    ):
        stored.setdefault(entry_id, []).append(product)
    return stored


def upsert(rows: list[Row]) -> tuple[int, int]:
    """Insert or update rows by id in the current session; return (created, updated)."""
    existing = {
        entry.id: entry
        for entry in db.session.scalars(select(KbEntry).where(KbEntry.id.in_([r.id for r in rows])))
    }
    products = _stored_products([r.id for r in rows])
    product_changes: dict[str, list[str]] = {}
    created = updated = 0
    for row in rows:
        entry = existing.get(row.id)
        if sorted(row.products) != products.get(row.id, []):
            product_changes[row.id] = row.products
            if entry is not None:
                updated += 1
                entry.updated_at = utcnow()
        if entry is None:
            db.session.add(
                KbEntry(
                    id=row.id,
                    question=row.question,
                    alternates=row.alternates,
                    answer=row.answer,
                    audience=row.audience,
                    tags=row.tags,
                )
            )
            created += 1
            continue
        changed = (entry.question, entry.alternates, entry.answer, entry.audience, entry.tags) != (
            row.question,
            row.alternates,
            row.answer,
            row.audience,
            row.tags,
        )
        if changed:
            entry.question, entry.alternates, entry.answer = (
                row.question,
                row.alternates,
                row.answer,
            )
            entry.audience, entry.tags = row.audience, row.tags
            if sorted(row.products) == products.get(row.id, []):  # else already counted above
                updated += 1
    if product_changes:
        _set_products(product_changes)
    bump_revision()
    return created, updated


def _set_products(changes: dict[str, list[str]]) -> None:
    """Replace the product ties of the given entries."""
    # Flush first: new entries must exist before the rows that reference them.
    db.session.flush()
    db.session.execute(
        db.delete(KbEntryProduct).where(KbEntryProduct.kb_entry_id.in_(list(changes)))
    )
    ties = [{"kb_entry_id": i, "product": p} for i, wanted in changes.items() for p in wanted]
    if ties:
        db.session.execute(db.insert(KbEntryProduct), ties)


def export(fmt: str) -> str:
    """Serialise the whole knowledge base as JSON Lines or CSV."""
    entries = db.session.scalars(select(KbEntry).order_by(KbEntry.id)).all()
    products = _stored_products([e.id for e in entries])
    if fmt == "jsonl":
        return "".join(
            json.dumps(
                {
                    "id": e.id,
                    "question": e.question,
                    "alternates": e.alternates,
                    "answer": e.answer,
                    "audience": e.audience,
                    "tags": e.tags,
                }
                # Only entries tied to products carry the field, so older files export unchanged.
                | ({"products": products[e.id]} if e.id in products else {}),
                ensure_ascii=False,
            )
            + "\n"
            for e in entries
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for e in entries:
        row = [e.id, e.question, "|".join(e.alternates), e.answer, e.audience, "|".join(e.tags)]
        row.append("|".join(products.get(e.id, [])))
        writer.writerow(row)
    return out.getvalue()


def bump_revision() -> None:
    """Mark the KB as changed so every worker rebuilds its index on its next message."""
    # A random token, not a counter: a rebuilt or restored database can never reuse an old one.
    token = uuid.uuid4().hex
    setting = db.session.get(Setting, REVISION_KEY)
    if setting is None:
        db.session.add(Setting(key=REVISION_KEY, value=token))
    else:
        setting.value = token


def current_revision() -> str:
    """The KB revision as stored in the database."""
    value = db.session.scalar(select(Setting.value).where(Setting.key == REVISION_KEY))
    return value or "0"


@dataclass(frozen=True)
class Snapshot:
    """The search index and entry lookup matching one KB revision."""

    index: KbIndex
    entries: dict[str, EntryView]


@dataclass(frozen=True)
class EntryView:
    """The parts of a KB entry the dialog needs, detached from the session."""

    id: str
    question: str
    answer: str
    audience: str


_snapshots: dict[str, tuple[str, Snapshot]] = {}
_snapshot_lock = threading.Lock()
_building: set[str] = set()
# Indexing 100k entries takes tens of seconds and WeChat waits 5 s for a reply: above this size
# a worker keeps answering from its previous index while a background thread builds the new one.
BACKGROUND_REBUILD_ENTRIES = 5000


def snapshot() -> Snapshot:
    """The current index; a query of one row per call, a rebuild only when the KB changed."""
    key = str(db.engine.url)
    revision = current_revision()
    cached = _snapshots.get(key)
    if cached and cached[0] == revision:
        return cached[1]
    if cached and len(cached[1].index) >= BACKGROUND_REBUILD_ENTRIES:
        _rebuild_in_background(current_app._get_current_object(), key)  # type: ignore[attr-defined]
        return cached[1]
    with _snapshot_lock:
        cached = _snapshots.get(key)
        if cached and cached[0] == revision:
            return cached[1]
        return _build(key, revision)


def _build(key: str, revision: str) -> Snapshot:
    entries = db.session.scalars(select(KbEntry)).all()
    docs = [
        KbDoc(
            id=e.id,
            question=e.question,
            alternates=tuple(e.alternates),
            audience=e.audience,
            tags=tuple(e.tags),
            answer=e.answer,
        )
        for e in entries
    ]
    views = {e.id: EntryView(e.id, e.question, e.answer, e.audience) for e in entries}
    snap = Snapshot(KbIndex.build(docs), views)
    _snapshots[key] = (revision, snap)
    return snap


def _rebuild_in_background(app: Flask, key: str) -> None:
    with _snapshot_lock:
        if key in _building:
            return
        _building.add(key)

    def work() -> None:
        try:
            with app.app_context():
                _build(key, current_revision())
                db.session.remove()
        except Exception:
            log.exception("rebuilding the knowledge-base index failed")
        finally:
            _building.discard(key)

    threading.Thread(target=work, name="kb-index", daemon=True).start()


def drop_cached_indexes() -> None:
    """Forget this process's indexes (tests; after restoring a database from a backup)."""
    with _snapshot_lock:
        _snapshots.clear()


def warm_up(app: Flask) -> None:
    """Build the index in the background as a worker starts, so its first reply is fast."""

    def work() -> None:
        try:
            with app.app_context():
                snapshot()
                db.session.remove()
        except Exception:
            # Before `db upgrade` there is nothing to index; the first message will retry.
            log.warning("knowledge-base warm-up skipped", exc_info=True)

    threading.Thread(target=work, name="kb-warm-up", daemon=True).start()
