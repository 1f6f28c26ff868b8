"""Hybrid retrieval: BM25F over words and character bigrams, plus sentence-embedding similarity.

The index is a handful of flat numpy arrays (postings in CSR form, one embedding row per
phrasing), so it is saved as ``.npy`` files and memory-mapped by every worker: loading is a few
``open`` calls, and the pages are shared between the processes that map the same files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from . import dense
from .handoff import NEIGHBOURS, group_similarity, prototypes
from .prep import prepare, tokens
from .spelling import Speller
from .text import compact, data_lines, load_lexicon, normalize
from .tuning import TUNING, Tuning
from .types import KbDoc

__all__ = ["FORMAT_VERSION", "Features", "HybridIndex", "text_hashes"]

# Bumped whenever the saved layout or the meaning of a feature changes: an index saved by
# another version is rebuilt instead of being read wrongly.
FORMAT_VERSION = 5
# Earlier formats whose phrasing rows (``emb``, ``text_hash``) mean what this one's do: a new
# build reuses their vectors instead of embedding the whole KB again after an upgrade.
SAME_ROWS = frozenset({3, 4, 5})
_AUDIENCE_CODE = {"all": 0, "end_user": 1, "installer": 2}
_AUDIENCE_NAME = {code: name for name, code in _AUDIENCE_CODE.items()}


@dataclass(frozen=True)
class Features:
    """What the decision reads about one candidate entry for one message."""

    row: int
    dense: float  # best centred cosine between the message and one of the entry's rows
    lexical: float  # BM25F score as a share of what the message's tokens could score at most
    dense_gap: float  # dense minus the best other candidate's dense
    lexical_gap: float  # lexical minus the best other candidate's lexical
    dense_first: bool
    lexical_first: bool
    cover: float = 0.0  # share of the message's words (IDF-weighted) the entry uses
    cover_gap: float = 0.0  # cover minus the best other candidate's
    sibling: float = 0.0  # how alike the entry is to the closest other candidate (centroids)
    foreign: bool = False  # the message names a product, brand or topic the KB never mentions


def _reduced(centroid: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The leading principal directions of the centroids, and the centroids projected on them.

    Uncentred, so that the projected dot product estimates the cosine itself; the directions
    come from a sample of the rows, which a KB this large describes as well as all of them.
    """
    rng = np.random.default_rng(0)
    sample = centroid[rng.choice(len(centroid), size=min(len(centroid), 20_000), replace=False)]
    _, _, vt = np.linalg.svd(sample.astype(np.float64), full_matrices=False)
    basis = np.ascontiguousarray(vt[:dim], dtype=np.float32)
    return basis, np.ascontiguousarray(centroid @ basis.T, dtype=np.float32)


def _common_direction(emb: np.ndarray, tuning: Tuning) -> np.ndarray:
    """The direction every embedding shares, removed before similarities are compared.

    Sentence embeddings crowd into a narrow cone (any two Chinese sentences have a cosine
    near 0.8), so raw cosines differ by little between a good and a poor match. Centring
    spreads them. The mean is taken over the KB's rows pooled with the shipped example
    sentences of ordinary support chat, so that a small KB is not centred on itself.
    """
    mode = tuning.centre
    dim = emb.shape[1] if emb.ndim == 2 else dense.DIM
    if mode == "off":
        return np.zeros(dim, dtype=np.float32)
    background = np.vstack(list(prototypes().values()))
    if background.shape[1] != dim:  # vectors of another model (stand-ins): their own mean
        background = np.zeros((0, dim), dtype=np.float32)
    pool = background if mode == "background" else np.vstack([emb, background])
    if not len(pool):
        return np.zeros(dim, dtype=np.float32)
    return pool.mean(axis=0).astype(np.float32)


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """A stable 64-bit digest per text (the same in every process and on every machine)."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
            for t in texts
        ),
        dtype=np.uint64,
        count=len(texts),
    )


def _saved_meta(folder: Path, formats: Iterable[int]) -> dict[str, Any]:
    """The metadata of the index saved in ``folder``; ValueError unless it is of one of
    ``formats`` and made with this model."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"no index in {folder}") from exc
    if meta.get("format") not in set(formats) or meta.get("model") != dense.MODEL:
        raise ValueError(f"index in {folder} has format {meta.get('format')}")
    return meta


@cache
def _makers() -> re.Pattern[str]:
    """A maker, then a model code or 的 if any, then a product noun (``makers.txt``)."""
    sections: dict[str, list[str]] = {"makers": [], "products": []}
    current = "makers"
    for line in data_lines("makers.txt"):
        if line.startswith("["):
            current = line.strip("[]")
        else:
            sections[current].extend(normalize(w) for w in line.split())

    def alternatives(words: list[str]) -> str:
        return "|".join(map(re.escape, sorted(set(words), key=len, reverse=True)))

    makers, products = alternatives(sections["makers"]), alternatives(sections["products"])
    return re.compile(f"({makers})[0-9a-z\\- ]{{0,10}}的?({products})")


class _RowFile:
    """A saved 2-D ``.npy`` array whose row slices are read from the file on demand."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(fh)
            self._offset = fh.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: not a C-ordered matrix")
        self.shape, self.dtype = shape, np.dtype(dtype)
        self._row_bytes = shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.shape[0])
        count = max(stop - start, 0)
        raw = os.pread(self._fd, count * self._row_bytes, self._offset + start * self._row_bytes)
        return np.frombuffer(raw, dtype=self.dtype).reshape(count, self.shape[1])

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The given rows, in that order (one read each: they are few and far apart)."""
        size = self._row_bytes
        raw = b"".join(os.pread(self._fd, size, self._offset + int(r) * size) for r in rows)
        return np.frombuffer(raw, dtype=self.dtype).reshape(-1, self.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[0 : self.shape[0]]
        return whole.astype(dtype) if dtype is not None else whole

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass


class HybridIndex:
    """Searchable arrays for one KB revision; read-only once built, safe to share across threads."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
        self._a = arrays
        self.meta = meta
        self.ids: list[str] = list(meta["ids"])  # type: ignore[arg-type]
        self.questions: list[str] = list(meta["questions"])  # type: ignore[arg-type]
        self.answers: list[str] = list(meta["answers"])  # type: ignore[arg-type]
        self.products: list[list[str]] = list(meta["products"])  # type: ignore[arg-type]
        self._vocab: dict[str, int] = {t: i for i, t in enumerate(meta["vocab"])}  # type: ignore[arg-type]
        self._row = {entry_id: i for i, entry_id in enumerate(self.ids)}
        self._product_masks: dict[frozenset[str], np.ndarray] = {}
        self._audience_masks: dict[frozenset[str], np.ndarray] = {}
        # The last message's centroid scores: the search and the handoff detector's KB contrast
        # both rank the entries for the same vector (a scan of every centroid each). Keyed by
        # the vector's bytes, so a thread that sees another thread's entry ignores it.
        self._last_scores: tuple[bytes, np.ndarray] | None = None
        self.speller = Speller(dict(meta.get("by_sound", {})), meta.get("known", ()))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def mapped(self) -> bool:
        """True when the arrays are memory-mapped from saved files (shared between processes)."""
        return isinstance(self._a["idf"], np.memmap)

    def row(self, entry_id: str) -> int | None:
        """Position of an entry, or None."""
        return self._row.get(entry_id)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        docs: Iterable[KbDoc],
        tuning: Tuning = TUNING,
        embed: Callable[[Sequence[str]], np.ndarray] = dense.embed,
    ) -> HybridIndex:
        """Index KB entries (embeds every phrasing: about 0.5 ms each)."""
        docs = list(docs)
        vocab: dict[str, int] = {}
        q_tf: list[Counter[int]] = []
        a_tf: list[Counter[int]] = []
        texts: list[str] = []
        phr_doc: list[int] = []
        for d, doc in enumerate(docs):
            phrasings = [doc.question, *doc.alternates]
            field = Counter(
                vocab.setdefault(t, len(vocab))
                for text in [*phrasings, *doc.tags]
                for t in tokens(prepare(text))
            )
            q_tf.append(field)
            a_tf.append(
                Counter(vocab.setdefault(t, len(vocab)) for t in tokens(prepare(doc.answer)))
            )
            # Each phrasing alone and with the entry's tags (the tags name the topic a terse
            # phrasing leaves implicit), and the answer, which describes what users see.
            tagline = " ".join(doc.tags)
            variants = [*phrasings, *(f"{t} {tagline}" for t in phrasings if tagline), doc.answer]
            for text in variants:
                if prepare(text):
                    texts.append(prepare(text))
                    phr_doc.append(d)
        speller = Speller.from_texts(
            prepare(t)
            for doc in docs
            for t in [doc.question, *doc.alternates, *doc.tags, doc.answer]
        )
        n = len(docs)
        df = np.zeros(len(vocab), dtype=np.int64)
        for q, a in zip(q_tf, a_tf, strict=True):
            for t in set(q) | set(a):
                df[t] += 1
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.array(
            [
                sum(q.values()) + tuning.answer_weight * sum(a.values())
                for q, a in zip(q_tf, a_tf, strict=True)
            ],
            dtype=np.float64,
        )
        avg = float(lengths.mean()) if n else 1.0
        k1, b = tuning.bm25_k1, tuning.bm25_b
        postings: list[list[tuple[int, float]]] = [[] for _ in vocab]
        for d, (q, a) in enumerate(zip(q_tf, a_tf, strict=True)):
            norm = k1 * (1.0 - b + b * lengths[d] / max(avg, 1e-9))
            for t in set(q) | set(a):
                tf = q.get(t, 0) + tuning.answer_weight * a.get(t, 0)
                postings[t].append((d, tf * (k1 + 1.0) / (tf + norm)))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(p) for p in postings])
        post_doc = np.fromiter(
            (d for p in postings for d, _ in p), dtype=np.int32, count=int(indptr[-1])
        )
        post_w = np.fromiter(
            (w for p in postings for _, w in p), dtype=np.float32, count=int(indptr[-1])
        )
        emb = embed(texts).astype(np.float32)
        text_hash = text_hashes(texts)
        phr_ptr = np.zeros(n + 1, dtype=np.int64)
        phr_ptr[1:] = np.cumsum(np.bincount(np.asarray(phr_doc, dtype=np.int64), minlength=n))
        # One unit vector per entry (the mean of its rows): how alike two entries are.
        centroid = np.zeros((n, emb.shape[1] if len(emb) else dense.DIM), dtype=np.float32)
        np.add.at(centroid, np.asarray(phr_doc, dtype=np.int64), emb)
        centroid /= np.maximum(np.linalg.norm(centroid, axis=1, keepdims=True), 1e-12)
        arrays: dict[str, Any] = {
            "mu": _common_direction(emb, tuning),
            "idf": idf,
            "indptr": indptr,
            "post_doc": post_doc,
            "post_w": post_w,
            # Half precision on disk: a 100k-entry KB has about a million rows.
            "emb": emb.astype(np.float16),
            # Which text each row embeds: the next build reuses the rows of unchanged texts.
            "text_hash": text_hash,
            "centroid": centroid,
            "phr_ptr": phr_ptr,
            "audience": np.array([_AUDIENCE_CODE.get(d.audience, 0) for d in docs], dtype=np.int8),
        }
        if n >= tuning.coarse_min_entries:
            arrays["basis"], arrays["coarse"] = _reduced(centroid, tuning.coarse_dim)
        meta: dict[str, object] = {
            "format": FORMAT_VERSION,
            "ids": [d.id for d in docs],
            "questions": [d.question for d in docs],
            # The replies as written, so a worker starting up needs no query of every entry.
            "answers": [d.answer for d in docs],
            "products": [list(d.products) for d in docs],
            "vocab": sorted(vocab, key=vocab.__getitem__),
            "by_sound": speller.by_sound,
            "known": sorted(speller.known),
            "model": dense.MODEL,
        }
        return cls(arrays, meta)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` (created; files replaced atomically one by one)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in self._a.items():
            tmp = folder / f".{name}.npy.tmp"
            with tmp.open("wb") as fh:
                np.save(fh, np.ascontiguousarray(arr))
            os.replace(tmp, folder / f"{name}.npy")
        tmp = folder / ".meta.json.tmp"
        tmp.write_text(json.dumps(self.meta, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, folder / "meta.json")

    @classmethod
    def load(cls, folder: Path) -> HybridIndex:
        """Memory-map a saved index; raises ValueError if it is missing or of another format."""
        meta = _saved_meta(folder, {FORMAT_VERSION})
        names = (
            "idf",
            "indptr",
            "post_doc",
            "post_w",
            "emb",
            "centroid",
            "phr_ptr",
            "audience",
            "text_hash",
            "mu",
        )
        arrays: dict[str, Any] = {
            n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in names if n != "emb"
        }
        if (folder / "coarse.npy").exists() and (folder / "basis.npy").exists():
            arrays["basis"] = np.load(folder / "basis.npy")
            arrays["coarse"] = np.load(folder / "coarse.npy", mmap_mode="r")
            arrays["centroid"] = _RowFile(folder / "centroid.npy")
        # The phrasing rows are read a few at a time with pread, not mapped: a mapping would
        # fault in (and keep resident) the pages around every row ever read.
        arrays["emb"] = _RowFile(folder / "emb.npy")
        return cls(arrays, meta)

    @classmethod
    def load_rows(cls, folder: Path) -> HybridIndex:
        """Only the phrasing rows of a saved index of any format in ``SAME_ROWS`` (for
        :meth:`vectors_for`); raises ValueError if there are none to reuse."""
        meta = _saved_meta(folder, SAME_ROWS)
        arrays = {
            "text_hash": np.load(folder / "text_hash.npy", mmap_mode="r"),
            "emb": _RowFile(folder / "emb.npy"),
        }
        return cls(arrays, meta)

    def vectors_for(self, hashes: np.ndarray) -> dict[int, np.ndarray]:
        """The saved embedding of each text (by :func:`text_hashes`) this index has."""
        own = np.asarray(self._a["text_hash"])
        wanted = np.isin(own, hashes)
        rows = np.flatnonzero(wanted)
        if not len(rows):
            return {}
        emb = self._a["emb"]
        out: dict[int, np.ndarray] = {}
        # Runs of neighbouring rows are read together (an entry's phrasings sit side by side).
        for run in np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1):
            block = np.asarray(emb[int(run[0]) : int(run[-1]) + 1], dtype=np.float32)
            for r, vector in zip(run.tolist(), block, strict=True):
                out[int(own[r])] = vector
        return out

    # ------------------------------------------------------------------ search
    def lexical_scores(self, toks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per entry: BM25F score over the best the tokens could reach, and word coverage.

        Word coverage is the share of the message's words (IDF-weighted, character pairs
        left out) that the entry uses anywhere: a message naming 门铃 is not explained by an
        entry that never says 门铃, however close the rest is.
        """
        n = len(self.ids)
        a = self._a
        counts = Counter(toks)
        ceiling = word_total = 0.0
        parts_doc: list[np.ndarray] = []
        parts_w: list[np.ndarray] = []
        word_doc: list[np.ndarray] = []
        word_w: list[np.ndarray] = []
        rare = math.log(1.0 + (n - 0.5) / 1.5) if n else 1.0
        for term, qtf in counts.items():
            t = self._vocab.get(term)
            # A token the KB never uses still counts in the ceiling: an entry explains less of
            # a message that talks about things the KB does not mention.
            idf = float(a["idf"][t]) if t is not None else rare
            weight = idf * (1.0 + math.log(qtf))
            ceiling += weight * (TUNING.bm25_k1 + 1.0)
            is_word = term.startswith("w:")
            word_total += idf if is_word else 0.0
            if t is None:
                continue
            lo, hi = int(a["indptr"][t]), int(a["indptr"][t + 1])
            docs = a["post_doc"][lo:hi]
            parts_doc.append(docs)
            parts_w.append(a["post_w"][lo:hi] * weight)
            if is_word:
                word_doc.append(docs)
                word_w.append(np.full(len(docs), idf, dtype=np.float32))
        zeros = np.zeros(n, dtype=np.float32)
        if not parts_doc or ceiling <= 0.0:
            return zeros, zeros
        scores = np.bincount(
            np.concatenate(parts_doc), weights=np.concatenate(parts_w), minlength=n
        )
        cover = zeros
        if word_doc and word_total > 0.0:
            cover = (
                np.bincount(np.concatenate(word_doc), weights=np.concatenate(word_w), minlength=n)
                / word_total
            )
        return (scores / ceiling).astype(np.float32), cover.astype(np.float32)

    def _centroids(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        centroid = self._a["centroid"]
        if isinstance(centroid, _RowFile):
            return centroid.take(rows)
        return np.asarray(centroid[np.asarray(rows, dtype=np.int64)], dtype=np.float32)

    def nearest(
        self, vector: np.ndarray, mask: np.ndarray, k: int, tuning: Tuning = TUNING
    ) -> list[int]:
        """The ``k`` entries allowed by ``mask`` whose centroids are closest to ``vector``.

        A large KB is searched in its reduced space (``Tuning.coarse_min_entries``), and
        ``Tuning.coarse_widen`` times as many entries come back: the estimate's best.
        """
        v = vector.astype(np.float32)
        allowed = int(mask.sum())
        if "coarse" in self._a:
            k *= tuning.coarse_widen
        k = min(k, allowed)
        if k <= 0:
            return []
        scores = np.where(mask, self._centroid_scores(v), -np.inf)
        return [int(r) for r in np.argpartition(-scores, k - 1)[:k]]

    def _centroid_scores(self, v: np.ndarray) -> np.ndarray:
        """Every entry's centroid against ``v`` (estimated in the reduced space of a large KB)."""
        key = v.tobytes()
        last = self._last_scores
        if last is not None and last[0] == key:
            return last[1]
        if "coarse" in self._a:
            scores = self._a["coarse"] @ (self._a["basis"] @ v)
        else:
            scores = np.asarray(self._a["centroid"] @ v, dtype=np.float32)
        scores.setflags(write=False)
        self._last_scores = (key, scores)
        return scores

    def dense_scores(self, vector: np.ndarray, rows: Iterable[int]) -> np.ndarray:
        """Per entry of ``rows``: the best centred cosine between the message and its rows.

        Only the candidates' own rows (phrasings, phrasings with tags, the answer) are read
        (:meth:`nearest` picks the candidates from the centroids), so the large row matrix
        stays on disk except for a few pages.
        """
        v = vector.astype(np.float32)
        ptr = self._a["phr_ptr"]
        emb = self._a["emb"]
        mu = np.asarray(self._a["mu"], dtype=np.float32)
        both = np.stack([v, mu], axis=1)
        mm = float(mu @ mu)
        v_norm = math.sqrt(max(1.0 - 2.0 * float(v @ mu) + mm, 1e-12))
        vm = float(v @ mu)
        out = []
        for r in rows:
            block = np.asarray(emb[int(ptr[r]) : int(ptr[r + 1])], dtype=np.float32)
            if not len(block):
                out.append(-1.0)
                continue
            # Cosine after removing the common direction: (b - mu).(v - mu) / |b - mu||v - mu|
            dots = block @ both
            sq = np.einsum("ij,ij->i", block, block)
            num = dots[:, 0] - dots[:, 1] - vm + mm
            den = np.sqrt(np.maximum(sq - 2.0 * dots[:, 1] + mm, 1e-12)) * v_norm
            out.append(float((num / den).max()))
        return np.asarray(out, dtype=np.float32)

    def uses_word(self, word: str) -> bool:
        """True when ``word`` (normalised) is a word of this KB's entries."""
        return "w:" + word in self._vocab

    def kb_similarity(self, vector: np.ndarray, tuning: Tuning = TUNING) -> float:
        """How close a message is to this KB's own phrasings, as the semantic handoff detector
        measures closeness to one of its example groups (``handoff.group_similarity``, raw
        cosines), over the rows of the entries nearest to it (any audience); -1 for an empty KB.
        """
        n = len(self.ids)
        if not n:
            return -1.0
        v = vector.astype(np.float32)
        ptr, emb = self._a["phr_ptr"], self._a["emb"]
        entries = self.nearest(v, np.ones(n, dtype=bool), NEIGHBOURS, tuning)
        rows = [np.asarray(emb[int(ptr[r]) : int(ptr[r + 1])], dtype=np.float32) for r in entries]
        return group_similarity(np.vstack(rows), v)

    def audience(self, row: int) -> str:
        """The audience of the entry at ``row``: "all", "end_user" or "installer"."""
        return _AUDIENCE_NAME[int(self._a["audience"][row])]

    def visible(self, audiences: frozenset[str]) -> np.ndarray:
        """Boolean mask of the entries ``audiences`` may see (read-only, shared)."""
        cached = self._audience_masks.get(audiences)
        if cached is None:
            codes = [c for name, c in _AUDIENCE_CODE.items() if name in audiences]
            cached = np.isin(self._a["audience"], codes)
            cached.flags.writeable = False
            self._audience_masks[audiences] = cached
        return cached

    def candidates(
        self,
        text: str,
        audiences: frozenset[str],
        products: frozenset[str] = frozenset(),
        vector: np.ndarray | None = None,
        tuning: Tuning = TUNING,
        prepared: str | None = None,
    ) -> list[Features]:
        """The entries worth deciding about, with their features, best dense first.

        ``prepared`` is the text as :meth:`prepared` gives it, if the caller has it already.
        """
        if prepared is None:
            prepared = self.prepared(text)
        toks = tokens(prepared)
        if not toks or not self.ids:
            return []
        lex, cover = self.lexical_scores(toks)
        foreign = self.foreign(text)
        if vector is None:
            vector = dense.embed([prepared], query=True)[0]
        mask = self.visible(audiences)
        if products:
            mask = mask & self.product_mask(products)
        if not mask.any():
            return []
        lex = np.where(mask, lex, -1.0)
        k = min(tuning.candidates, int(mask.sum()))
        rows = set(self.nearest(vector, mask, k, tuning))
        rows |= set(np.argpartition(-lex, k - 1)[:k].tolist())
        rows = {r for r in rows if mask[r]}
        exact = self.dense_scores(vector, sorted(rows))
        den = dict(zip(sorted(rows), exact.tolist(), strict=True))
        best_d = sorted(((float(den[r]), r) for r in rows), reverse=True)
        best_l = sorted(((float(lex[r]), r) for r in rows), reverse=True)
        best_c = sorted(((float(cover[r]), r) for r in rows), reverse=True)
        order = sorted(rows)
        cent = self._centroids(order) - np.asarray(self._a["mu"], dtype=np.float32)
        cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
        alike = cent @ cent.T
        np.fill_diagonal(alike, -1.0)
        sibling = {r: float(alike[i].max()) if len(order) > 1 else 0.0 for i, r in enumerate(order)}
        out = []
        for r in rows:
            other_d = next((s for s, o in best_d if o != r), -1.0)
            other_l = next((s for s, o in best_l if o != r), 0.0)
            other_c = next((s for s, o in best_c if o != r), 0.0)
            out.append(
                Features(
                    r,
                    float(den[r]),
                    max(float(lex[r]), 0.0),
                    float(den[r]) - other_d,
                    max(float(lex[r]), 0.0) - max(other_l, 0.0),
                    best_d[0][1] == r,
                    best_l[0][1] == r,
                    float(cover[r]),
                    float(cover[r]) - other_c,
                    sibling[r],
                    foreign,
                )
            )
        out.sort(key=lambda f: f.dense, reverse=True)
        return out

    def foreign(self, text: str) -> bool:
        """True when ``text`` names a topic from the off-topic list that this KB never uses.

        The list (offtopic.txt) names what support KBs usually do not cover: other appliances,
        other makers' products, company affairs. A KB that does mention the topic (a maker
        whose KB names its own brand or 换电池) keeps it in scope.
        """
        norm = compact(normalize(prepare(text)))
        found = load_lexicon("offtopic.txt").find(norm)
        # Compared as retrieval tokens, so that a function character ("海康的门铃") counts
        # as the vocabulary counts it: not at all.
        if found is not None and any(
            t not in self._vocab for t in tokens(prepare(found)) if t.startswith("w:")
        ):
            return True
        return any(self._other_makers(m.group(1), m.group(2)) for m in _makers().finditer(norm))

    def _other_makers(self, maker: str, product: str) -> bool:
        """True when ``maker``'s ``product`` is another maker's product (see makers.txt)."""
        if any(self._common(t) for t in tokens(prepare(maker)) if t.startswith("w:")):
            return False  # the KB's own brand (a brand it only mentions is another maker)
        return "w:" + product not in self._vocab or self._common("w:" + product)

    def _common(self, token: str, tuning: Tuning = TUNING) -> bool:
        """True when ``token`` is in ``Tuning.main_topic_share`` of the entries or more."""
        t = self._vocab.get(token)
        if t is None:
            return False
        # The document frequency, from the idf (BM25's idf formula inverted).
        n = len(self.ids)
        e = math.exp(float(self._a["idf"][t]))
        return (n + 1.0 - 0.5 * e) / e >= tuning.main_topic_share * n

    def prepared(self, text: str) -> str:
        """A message as this index reads it: prepared, then spelled with the KB's words."""
        return self.speller.correct(prepare(text))

    def product_mask(self, products: frozenset[str]) -> np.ndarray:
        """Entries about one of ``products`` or about no product in particular."""
        cached = self._product_masks.get(products)
        if cached is None:
            cached = np.array(
                [not p or bool(products.intersection(p)) for p in self.products], dtype=bool
            )
            if len(self._product_masks) < 256:
                self._product_masks[products] = cached
        return cached
