"""A model's page content (manuals, videos, firmware, FAQ), loaded once per model and revision.

Every device of a model shows the same model-level content, so a device page needs only its
own row from the database: the rest is kept per process, keyed by the model, the catalogue's
revision and the knowledge base's revision (see :mod:`kefu.revision`). Any ORM change to the
catalogue bumps the catalogue revision in the same transaction, so every worker sees an edit
within ``REVISION_CHECK_MS``. What is kept are plain copies of the rows, never live ORM
objects, so nothing is loaded lazily from another request's session.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, selectinload

from .. import revision
from ..extensions import db
from ..models import KbEntry
from .models import Firmware, KbEntryProduct, Manual, ProductModel, Series, Video

REVISION_KEY = "catalog_revision"
# What a model's page content is made of; KB entries also bump the KB revision on import.
_CATALOGUE = (Series, ProductModel, Manual, Video, Firmware, KbEntryProduct, KbEntry)


@dataclass(frozen=True)
class ModelContent:
    """What a device page shows about its model, the same for every device of it."""

    manuals: tuple[Any, ...]
    videos: tuple[Any, ...]
    firmware: tuple[Any, ...]
    faq: tuple[Any, ...]  # every audience; the page filters by who is looking


_cache: dict[tuple[str, str, str], dict[int, ModelContent]] = {}
_lock = threading.Lock()


def for_model(model: ProductModel) -> ModelContent:
    """The model's content, from this process's cache unless the catalogue or KB changed."""
    from .. import kb
    from . import devices

    key = (str(db.engine.url), revision.latest(REVISION_KEY), kb.latest_revision())
    models = _cache.get(key)
    if models is not None and model.id in models:
        return models[model.id]
    loaded = db.session.scalars(
        select(ProductModel)
        .where(ProductModel.id == model.id)
        .options(
            selectinload(ProductModel.manuals),
            selectinload(ProductModel.videos),
            selectinload(ProductModel.firmware),
        )
        .execution_options(populate_existing=True)
    ).one()
    content = ModelContent(
        manuals=tuple(_copy(m) for m in loaded.manuals),
        videos=tuple(_copy(v) for v in loaded.videos),
        firmware=tuple(_copy(f) for f in loaded.firmware),
        faq=tuple(_copy(e) for e in devices.faq_for(loaded, installer=True)),
    )
    with _lock:
        if key not in _cache:
            _cache.clear()  # older revisions are never asked for again
            _cache[key] = {}
        _cache[key][model.id] = content
    return content


def forget() -> None:
    """Drop this process's cached content (tests)."""
    with _lock:
        _cache.clear()


def _copy(row: Any) -> SimpleNamespace:
    """The row's column values, detached from any session."""
    return SimpleNamespace(**{a.key: getattr(row, a.key) for a in inspect(row).mapper.column_attrs})


@event.listens_for(Session, "before_flush")
def _bump_on_catalogue_change(session: Session, flush_context: Any, instances: Any) -> None:
    # Any catalogue row added, changed or removed through the ORM: device pages must show it.
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, _CATALOGUE):
            continue
        if obj in session.new or obj in session.deleted or session.is_modified(obj):
            with session.no_autoflush:
                revision.bump(REVISION_KEY, session)
            _cache.clear()
            return
