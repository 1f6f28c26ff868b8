"""The knowledge base: import and export (JSON Lines or CSV), and the per-process search index."""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, current_app
from sqlalchemy import select

from . import revision
from .catalog.models import CATEGORIES, KbEntryProduct
from .extensions import db
from .imports import ImportError_, read_text
from .models import KbEntry, utcnow
from .nlu import KbDoc, Understanding, dense, load_models, understand
from .nlu.hybrid import FORMAT_VERSION, SAME_ROWS, HybridIndex, text_hashes

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


def _batches(items: list[Any], size: int | None = None) -> Iterator[list[Any]]:
    """``items`` in slices small enough for one statement (PostgreSQL: 65,535 parameters)."""
    size = size or int(current_app.config["KB_IMPORT_BATCH"])
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stored_products(ids: list[str]) -> dict[str, list[str]]:
    stored: dict[str, list[str]] = {}
    for batch in _batches(ids):
        for entry_id, product in db.session.execute(
            select(KbEntryProduct.kb_entry_id, KbEntryProduct.product)
            .where(KbEntryProduct.kb_entry_id.in_(batch))
            .order_by(KbEntryProduct.product)
        ):
            stored.setdefault(entry_id, []).append(product)
    return stored


def upsert(rows: list[Row]) -> tuple[int, int]:
    """Insert or update rows by id in the current session; return (created, updated)."""
    ids = [r.id for r in rows]
    fields = (KbEntry.question, KbEntry.alternates, KbEntry.answer, KbEntry.audience, KbEntry.tags)
    existing = {
        entry_id: tuple(values)
        for batch in _batches(ids)
        for entry_id, *values in db.session.execute(
            select(KbEntry.id, *fields).where(KbEntry.id.in_(batch))
        )
    }
    products = _stored_products(ids)
    product_changes: dict[str, list[str]] = {}
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    now = utcnow()
    for row in rows:
        values = (row.question, row.alternates, row.answer, row.audience, row.tags)
        record = dict(zip((f.key for f in fields), values, strict=True))
        products_changed = sorted(row.products) != products.get(row.id, [])
        if products_changed:
            product_changes[row.id] = row.products
        stored = existing.get(row.id)
        if stored is None:
            new_rows.append({"id": row.id, "created_at": now, "updated_at": now, **record})
        elif products_changed or stored != values:
            changed_rows.append({"id": row.id, "updated_at": now, **record})
    # executemany in bounded batches: a KB of any size, never one statement over PostgreSQL's
    # 65,535 parameters, and a statement compiled once rather than per row count.
    for batch in _batches(new_rows):
        db.session.execute(db.insert(KbEntry), batch)
    for batch in _batches(changed_rows):
        db.session.execute(db.update(KbEntry), batch)
    if product_changes:
        _set_products(product_changes)
    bump_revision()
    return len(new_rows), len(changed_rows)


def _set_products(changes: dict[str, list[str]]) -> None:
    """Replace the product ties of the given entries."""
    # Flush first: entries changed through the ORM are written before rows that reference them.
    db.session.flush()
    for batch in _batches(list(changes)):
        db.session.execute(db.delete(KbEntryProduct).where(KbEntryProduct.kb_entry_id.in_(batch)))
    ties = [{"kb_entry_id": i, "product": p} for i, wanted in changes.items() for p in wanted]
    for batch in _batches(ties):
        db.session.execute(db.insert(KbEntryProduct), batch)


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
    revision.bump(REVISION_KEY)


def current_revision() -> str:
    """The KB revision as stored in the database."""
    return revision.read(REVISION_KEY)


def latest_revision() -> str:
    """The KB revision, read from the database at most once per ``REVISION_CHECK_MS``."""
    return revision.latest(REVISION_KEY)


@dataclass(frozen=True)
class Snapshot:
    """The search index and entry lookup matching one KB revision."""

    index: HybridIndex
    entries: Mapping[str, EntryView]

    def __post_init__(self) -> None:
        index = self.index

        # What a message means against one index never changes, and support traffic repeats
        # itself (menu words, 转人工, the question of the day): a repeat costs a dict lookup.
        entries = self.entries

        @lru_cache(maxsize=UNDERSTOOD_CACHE)
        def understood(
            text: str, audiences: frozenset[str], products: frozenset[str]
        ) -> Understanding:
            result = understand(text, index, audiences, products)
            if all(c.id in entries for c in result.candidates):
                return result
            # An index of an earlier revision (while this one's is built) may name an entry
            # that is gone: it is not offered, and an answer without it is no answer.
            kept = tuple(c for c in result.candidates if c.id in entries)
            if result.kind in {"answer", "clarify"} and len(kept) < len(result.candidates):
                return Understanding("none", kept, reason="no_match")
            return Understanding(result.kind, kept, result.reason)

        object.__setattr__(self, "understand", understood)

    # Set in __post_init__: ``understand(text, audiences, products)``, memoised.
    understand: Callable[[str, frozenset[str], frozenset[str]], Understanding] = field(
        init=False, repr=False, compare=False
    )


# Messages whose understanding each index keeps (about 1 KB each).
UNDERSTOOD_CACHE = 8192


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


class NotReady(Exception):
    """No index is loaded yet and building one takes longer than a reply may wait."""


# How long a message waits for another thread's index build before it is answered without
# the index (WeChat gives up after 5 s; the rest of the reply needs some of that time).
READY_WAIT_SECONDS = 2.0


def ready() -> bool:
    """Whether this process has an index for the app's database (it can answer at once)."""
    return str(db.engine.url) in _snapshots


def snapshot() -> Snapshot:
    """The current index; a rebuild only when the KB changed; NotReady while none is loaded."""
    key = str(db.engine.url)
    revision = latest_revision()
    cached = _snapshots.get(key)
    if cached and cached[0] == revision:
        return cached[1]
    # A served worker (warm_up ran) never rebuilds on a message: the new KB may be far larger
    # than the one it has. Elsewhere (CLI, tests) a small KB is rebuilt at once.
    if cached and (len(cached[1].index) >= BACKGROUND_REBUILD_ENTRIES or key in _warmers):
        _rebuild_in_background(current_app._get_current_object(), key)  # type: ignore[attr-defined]
        return cached[1]
    if cached is None and key in _warmers:
        # A served worker loads its index in the background (warm_up), never on a message: a
        # large KB takes longer than WeChat waits. Wait a little for it, then give up.
        return _wait_for_warm_up(current_app._get_current_object(), key)  # type: ignore[attr-defined]
    # Another thread building holds the lock: wait a little, never the whole build.
    if not _snapshot_lock.acquire(timeout=READY_WAIT_SECONDS):
        raise NotReady("the knowledge-base index is still loading")
    try:
        cached = _snapshots.get(key)
        if cached and cached[0] == revision:
            return cached[1]
        return _build(key, revision)
    finally:
        _snapshot_lock.release()


def _entry_views() -> dict[str, EntryView]:
    # Plain rows, not ORM objects: a worker reads 100k of them in well under a second.
    rows = db.session.execute(
        select(KbEntry.id, KbEntry.question, KbEntry.answer, KbEntry.audience)
    )
    return {r.id: EntryView(r.id, r.question, r.answer, r.audience) for r in rows}


class _IndexedEntries(Mapping[str, EntryView]):
    """The entries of a KB revision as its saved index holds them, made on demand.

    A dictionary of 100k views would cost each worker tens of MB for the few entries a
    message needs; the index has the texts already.
    """

    def __init__(self, index: HybridIndex) -> None:
        self._index = index

    def __getitem__(self, entry_id: str) -> EntryView:
        row = self._index.row(entry_id)
        if row is None:
            raise KeyError(entry_id)
        index = self._index
        return EntryView(entry_id, index.questions[row], index.answers[row], index.audience(row))

    def __contains__(self, entry_id: object) -> bool:
        return isinstance(entry_id, str) and self._index.row(entry_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._index.ids)

    def __len__(self) -> int:
        return len(self._index)


def _build(key: str, revision: str) -> Snapshot:
    index = load_or_build_index(revision)
    snap = Snapshot(index, _IndexedEntries(index))
    _snapshots[key] = (revision, snap)
    return snap


def index_folder(revision: str) -> Path:
    """Where the index of one KB revision is saved (under ``KB_INDEX_DIR``)."""
    return _index_root() / f"{revision}{_INDEX_SUFFIX}"


# A saved index's folder is its KB revision and this: another format or model is not read.
_INDEX_SUFFIX = f"-v{FORMAT_VERSION}-{dense.MODEL}"


def _index_root() -> Path:
    return Path(
        current_app.config.get("KB_INDEX_DIR") or Path(current_app.instance_path) / "kb-index"
    )


# Called with (texts embedded so far, texts to embed) while an index is built.
Progress = Callable[[int, int], None]


def load_or_build_index(
    revision: str, entries: list[KbEntry] | None = None, progress: Progress | None = None
) -> HybridIndex:
    """The search index of KB ``revision``: memory-mapped if saved, else built and saved.

    Workers of one machine map the same files, so they share the pages; a build (on import,
    or by the first worker to see a new revision) is written to a temporary folder and renamed,
    so a reader never sees half an index. A build embeds only the texts the newest saved index
    does not have: after an edit of one entry of a large KB, that entry's phrasings.
    """
    folder = index_folder(revision)
    try:
        return HybridIndex.load(folder)
    except ValueError:
        pass
    if entries is None:
        entries = list(db.session.scalars(select(KbEntry)).all())
    docs = index_docs(entries)
    index = HybridIndex.build(docs, embed=_reusing_embedder(newest_saved_rows(), progress))
    if revision == "0":
        # No import has happened, so the token is the same in every database: nothing to share.
        return index
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}")
    try:
        index.save(tmp)
        tmp.rename(folder)
    except OSError:
        # Another worker saved the same revision first (or the folder is read-only): the
        # index in memory is just as good.
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("knowledge-base index for %s not saved", revision, exc_info=True)
        return index
    _prune_index_folders(folder)
    try:
        # Map the saved files rather than keep the built arrays: the pages are then shared.
        return HybridIndex.load(folder)
    except ValueError:
        return index


def index_docs(entries: list[KbEntry]) -> list[KbDoc]:
    """The entries as the index reads them, with the products each is about."""
    products = _stored_products([e.id for e in entries])
    return [
        KbDoc(
            id=e.id,
            question=e.question,
            alternates=tuple(e.alternates),
            audience=e.audience,
            tags=tuple(e.tags),
            answer=e.answer,
            products=tuple(products.get(e.id, ())),
        )
        for e in entries
    ]


# Texts embedded per call while building (the progress is reported after each).
EMBED_BATCH = 64


def _reusing_embedder(
    previous: tuple[str, HybridIndex] | None, progress: Progress | None
) -> Callable[[Sequence[str]], np.ndarray]:
    """An embedder that takes the vectors of texts ``previous`` has and embeds only the rest."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        hashes = text_hashes(texts)
        known = previous[1].vectors_for(hashes) if previous is not None else {}
        out = np.zeros((len(texts), dense.DIM), dtype=np.float32)
        todo: list[int] = []
        for i, h in enumerate(hashes.tolist()):
            vector = known.get(h)
            if vector is None:
                todo.append(i)
            else:
                out[i] = vector
        if progress is not None:
            progress(0, len(todo))
        for start in range(0, len(todo), EMBED_BATCH):
            rows = todo[start : start + EMBED_BATCH]
            out[rows] = dense.embed([texts[i] for i in rows])
            if progress is not None:
                progress(min(start + EMBED_BATCH, len(todo)), len(todo))
        log.info("index build: %d texts embedded, %d reused", len(todo), len(texts) - len(todo))
        return out

    return embed


def newest_saved_index(exclude: str | None = None) -> tuple[str, HybridIndex] | None:
    """The most recently saved index of this format and model, with its KB revision, if any."""
    return _newest_saved({FORMAT_VERSION}, HybridIndex.load, exclude)


def newest_saved_rows() -> tuple[str, HybridIndex] | None:
    """The phrasing rows of the most recently saved index of this model, of this format or an
    earlier one with the same rows (``hybrid.SAME_ROWS``): what a new build can reuse."""
    return _newest_saved(SAME_ROWS, HybridIndex.load_rows)


def _newest_saved(
    versions: Iterable[int], load: Callable[[Path], HybridIndex], exclude: str | None = None
) -> tuple[str, HybridIndex] | None:
    """The newest saved folder of one of the index format ``versions`` that ``load`` reads
    (folders it cannot read are skipped), with its KB revision."""
    suffixes = [f"-v{version}-{dense.MODEL}" for version in versions]
    for folder in _saved_folders(_index_root()):
        suffix = next((s for s in suffixes if folder.name.endswith(s)), None)
        if suffix is None or folder.name.removesuffix(suffix) == exclude:
            continue
        try:
            return folder.name.removesuffix(suffix), load(folder)
        except (OSError, ValueError):
            continue
    return None


def build_pending_index(progress: Progress | None = None) -> HybridIndex:
    """Build and save the index of the KB as this session's uncommitted changes leave it.

    Called after :func:`upsert` and before the commit: workers keep answering from the
    previous revision until the commit publishes the new one, whose index is then ready.
    """
    db.session.flush()
    entries = list(db.session.scalars(select(KbEntry)).all())
    return load_or_build_index(current_revision(), entries, progress)


# Saved indexes of this many recent revisions are kept (a worker may still be mapping one).
KEEP_INDEXES = 3


def _saved_folders(root: Path) -> list[Path]:
    """Saved index folders under ``root``, newest first (not the half-written ``.`` ones)."""
    if not root.is_dir():
        return []
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )


def _prune_index_folders(current: Path) -> None:
    for old in _saved_folders(current.parent)[KEEP_INDEXES:]:
        # A folder saved in the last minute may be about to be mapped by the worker that saved it.
        if old != current and time.time() - old.stat().st_mtime > 60:
            # Removing files a worker has mapped is safe on POSIX: its mapping stays valid.
            shutil.rmtree(old, ignore_errors=True)


def _rebuild_in_background(app: Flask, key: str) -> None:
    with _snapshot_lock:
        if key in _building:
            return
        _building.add(key)

    def work() -> None:
        try:
            with app.app_context():
                revision_now = current_revision()
                db.session.remove()
                if not (index_folder(revision_now) / "meta.json").exists():
                    _build_elsewhere(app)  # not in this process: it is answering messages
                _build(key, revision_now)
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
        _warmers.clear()
    revision.forget()


# Per database: the thread loading this process's first index (see warm_up).
_warmers: dict[str, threading.Thread] = {}
_warm_up_started: dict[str, float] = {}
_warmed = threading.Condition()


def warm_up(app: Flask) -> threading.Thread:
    """Load the index in the background as a worker starts; messages never wait for it long.

    Until it is loaded, :func:`snapshot` raises NotReady after a short wait and ``/healthz``
    answers 503; if loading fails (the database is down), the next message starts it again.
    """
    with app.app_context():
        key = str(db.engine.url)
    with _warmed:
        running = _warmers.get(key)
        if running is not None and running.is_alive():
            return running

        def work() -> None:
            try:
                # Ready means able to answer: the models too (loaded already under gunicorn).
                load_models()
                with app.app_context():
                    revision_now = current_revision()
                    db.session.remove()
                    if not (index_folder(revision_now) / "meta.json").exists():
                        # The current revision's index is not built yet (an import that left
                        # it to the workers): answer from the newest saved one meanwhile.
                        _serve_previous(key, revision_now)
                        _build_elsewhere(app)
                    with _snapshot_lock:
                        _build(key, revision_now)
                    db.session.remove()
            except Exception:
                # Before `db upgrade` or while the database is away: retried on demand.
                log.warning("knowledge-base warm-up failed", exc_info=True)
            finally:
                _building.discard(key)
                with _warmed:
                    _warmed.notify_all()

        thread = threading.Thread(target=work, name="kb-warm-up", daemon=True)
        _warmers[key] = thread
        _warm_up_started[key] = time.monotonic()
        thread.start()
        return thread


def _serve_previous(key: str, revision_now: str) -> None:
    """Install the newest saved index of an earlier revision, if there is one, until ours is."""
    previous = newest_saved_index(exclude=revision_now)
    if previous is None:
        return
    revision_then, index = previous
    views = _entry_views()
    db.session.remove()
    with _snapshot_lock:
        if key not in _snapshots:
            _snapshots[key] = (revision_then, Snapshot(index, views))
            # The warm-up builds the current one: no second build from snapshot().
            _building.add(key)
    with _warmed:
        _warmed.notify_all()
    log.info(
        "answering from the index of revision %s while %s is built", revision_then, revision_now
    )


def _build_elsewhere(app: Flask) -> None:
    """Build and save the current revision's index in a child process, and wait for it.

    Embedding a large KB keeps a core busy for a long time and holds the interpreter lock,
    so inside the worker it would starve the thread answering messages. A child process
    builds it instead (one per machine at a time: a file lock; the others wait for it and then
    load what it saved), and the worker maps the saved files.
    """
    config = {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "KB_INDEX_DIR": app.config.get("KB_INDEX_DIR") or str(Path(app.instance_path) / "kb-index"),
    }
    child = multiprocessing.get_context("spawn").Process(
        target=_build_saved_index, args=(config,), name="kb-index-build", daemon=True
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the index build process exited with {child.exitcode}")


def _build_saved_index(config: dict[str, Any]) -> None:
    """Child process: build the current revision's index into KB_INDEX_DIR, unless it is there."""
    import fcntl

    from . import create_app

    app = create_app(config)
    with app.app_context():
        folder = index_folder(current_revision())
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker's child may be building it
            if not (folder / "meta.json").exists():
                load_or_build_index(current_revision())
        db.session.remove()
        db.engine.dispose()


def _wait_for_warm_up(app: Flask, key: str) -> Snapshot:
    with _warmed:
        thread = _warmers.get(key)
        if thread is None or not thread.is_alive():
            thread = None
    if thread is None:
        warm_up(app)
    # Only the first messages after start wait (a small KB is ready by then); later ones are
    # answered at once while a large one loads, or they would queue up behind each other.
    deadline = _warm_up_started.get(key, time.monotonic()) + READY_WAIT_SECONDS
    with _warmed:
        while key not in _snapshots:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady("the knowledge-base index is still loading")
            _warmed.wait(left)
    return _snapshots[key][1]
