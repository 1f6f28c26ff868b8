"""Text normalisation, lexicon loading and term extraction for the understanding layer."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "Lexicon",
    "Terms",
    "analyze",
    "compact",
    "data_lines",
    "load_lexicon",
    "normalize",
    "synonyms",
    "weak_concepts",
]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SPACE_RE = re.compile(r"\s+")
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ASCII_ALNUM_RE = re.compile(r"[0-9a-z]")
_WORDLIKE_RE = re.compile(r"[0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Characters that make a bigram meaningless on their own ("的时", "我家"); negations such as
# 不/没 stay because "不转" and "没声音" are exactly what tells entries apart.
_FUNCTION_CHARS = frozenset(
    "的了吗呢啊吧呀哦嘛么我你您他她它们是这那个就都也还很太把被让给啥怎什哪嗯呗"
)
# An error code such as 400018: it names its entry better than any product word.
ERROR_CODE_RE = re.compile(r"^\d{4,}$")
# Sizes such as 128g / 1t / 64gb are one concept for storage-card questions.
_CAPACITY_RE = re.compile(r"^\d+(?:\.\d+)?(?:g|gb|t|tb|m|mb)$")


def normalize(text: str) -> str:
    """Return NFKC-folded (full-width to half-width), lower-cased, whitespace-collapsed text."""
    text = unicodedata.normalize("NFKC", text or "").translate(_ZERO_WIDTH).lower()
    return _SPACE_RE.sub(" ", text).strip()


def _read_data(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def data_lines(name: str) -> list[str]:
    """Non-comment lines of a packaged data file; "#" after whitespace starts a comment."""
    out: list[str] = []
    for raw in _read_data(name).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("re:"):
            line = re.split(r"\s#", line, maxsplit=1)[0].strip()
        out.append(line)
    return out


@dataclass(frozen=True)
class Lexicon:
    """A phrase list plus regular expressions, matched against normalised text."""

    phrases: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    def find(self, text: str, ordinary: Callable[[str], bool] | None = None) -> str | None:
        """Return the first phrase or pattern match in ``text`` (already normalised), or None.

        A plain phrase for which ``ordinary`` is true does not count (the patterns still do).
        """
        for phrase in self.phrases:
            if phrase in text and (ordinary is None or not ordinary(phrase)):
                return phrase
        for pattern in self.patterns:
            m = pattern.search(text)
            if m:
                return m.group(0)
        return None


@cache
def load_lexicon(name: str) -> Lexicon:
    """Load ``name`` (a packaged .txt file): plain lines are phrases, ``re:`` lines regexes."""
    phrases: list[str] = []
    patterns: list[re.Pattern[str]] = []
    for line in data_lines(name):
        if line.startswith("re:"):
            patterns.append(re.compile(line[3:]))
        else:
            phrases.extend(normalize(p) for p in line.split())
    # Longest first so the reported match is the most specific one.
    phrases.sort(key=len, reverse=True)
    return Lexicon(tuple(dict.fromkeys(phrases)), tuple(patterns))


@cache
def weak_concepts() -> frozenset[str]:
    """Canonical names of context groups (lines starting with "~" in synonyms.txt)."""
    return frozenset(
        normalize(line[1:].split()[0]) for line in data_lines("synonyms.txt") if line[0] == "~"
    )


@cache
def synonyms() -> dict[str, tuple[str, ...]]:
    """Map each surface form to the canonical names of every synonym group it belongs to."""
    table: dict[str, list[str]] = {}
    for line in data_lines("synonyms.txt"):
        surfaces = [normalize(s) for s in line.lstrip("~").split()]
        canon = surfaces[0]
        for s in surfaces:
            groups = table.setdefault(s, [])
            if canon not in groups:
                groups.append(canon)
    return {k: tuple(v) for k, v in table.items()}


@cache
def stopwords() -> frozenset[str]:
    """Function words ignored when matching."""
    return frozenset(normalize(w) for line in data_lines("stopwords.txt") for w in line.split())


# ---------------------------------------------------------------- jieba
_jieba_lock = threading.Lock()
_tokenizer: Any = None


def _jieba() -> Any:
    """Return a private jieba Tokenizer with the domain words added, created once per process."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _jieba_lock:
        if _tokenizer is None:
            # jieba 0.42 emits DeprecationWarnings (pkg_resources, regex escapes) on import and
            # logs "Building prefix dict" at DEBUG; neither should reach the app or pytest.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                tok.initialize()
                for surface in synonyms():
                    if len(surface) > 1:
                        # A high frequency makes jieba keep domain words whole (录像机, 声波配网).
                        tok.add_word(surface, freq=50000)
            _tokenizer = tok
    return _tokenizer


@lru_cache(maxsize=65536)
def _cut(segment: str) -> tuple[str, ...]:
    # HMM off: unknown runs fall apart into characters instead of invented words, which keeps
    # query and KB segmentation consistent; character bigrams recover the fuzzy matches.
    return tuple(_jieba().cut(segment, HMM=False))


@dataclass(frozen=True)
class Terms:
    """Terms extracted from one text: concepts (c:), words (w:) and character bigrams (b:)."""

    concepts: tuple[str, ...]
    words: tuple[str, ...]
    bigrams: tuple[str, ...]

    def all(self) -> set[str]:
        """Every term, prefixed by its kind."""
        out = {"c:" + c for c in self.concepts}
        out.update("w:" + w for w in self.words)
        out.update("b:" + b for b in self.bigrams)
        return out


def compact(text: str) -> str:
    """Drop spaces inside Chinese text, keeping them between ASCII words."""
    # Drop spaces except between two ASCII words ("out of range" stays apart for jieba, but
    # "画面 倒" becomes one run).
    return re.sub(r"(?<![0-9a-z]) | (?![0-9a-z])", "", text)


def _inner_concepts(token: str, syn: dict[str, tuple[str, ...]]) -> list[str]:
    found: list[str] = []
    i, n = 0, len(token)
    while i < n:
        for j in range(n, i + 1, -1):
            if (j - i) < n and token[i:j] in syn:
                found.extend(syn[token[i:j]])
                i = j
                break
        else:
            i += 1
    return found


def _glued_ascii(toks: tuple[str, ...], k: int) -> bool:
    """True if ASCII token ``k`` is a piece of a longer letter/digit run."""
    tok = toks[k]
    if not tok.isascii() or not tok[-1:].isalnum():
        return False
    before = toks[k - 1] if k else ""
    after = toks[k + 1] if k + 1 < len(toks) else ""
    return (before[-1:].isascii() and before[-1:].isalnum()) or (
        after[:1].isascii() and after[:1].isalnum()
    )


def analyze(text: str) -> Terms:
    """Extract matching terms from raw or normalised text."""
    norm = compact(normalize(text))
    syn = synonyms()
    stop = stopwords()
    concepts: list[str] = []
    words: list[str] = []
    # Character runs outside synonym surfaces; bigrams come only from these, because inside a
    # surface the concept already says everything (and an unmatched "掉线" bigram must not
    # count against a KB entry that says "离线").
    runs: list[str] = []
    run = ""
    toks = _cut(norm)
    for k, tok in enumerate(toks):
        groups = syn.get(tok)
        if groups and _glued_ascii(toks, k):
            # jieba splits unknown Latin runs at dictionary words ("asdfgh" -> a/sd/fgh);
            # such a piece is no storage card.
            groups = None
        if groups is None and _CAPACITY_RE.match(tok):
            groups = syn.get("容量")
        if groups:
            concepts.extend(groups)
            words.append(tok)
            runs.append(run)
            run = ""
            continue
        run += tok
        tok = tok.strip()
        if not tok or not _WORDLIKE_RE.search(tok):
            continue
        if tok not in stop:
            words.append(tok)
            if len(tok) > 2 and has_cjk(tok):
                # jieba's own dictionary sometimes glues a domain word to its neighbour
                # ("屏幕提示"); look for synonym surfaces inside such unknown words. Not inside
                # ASCII words: "sd" in "asdfgh" is no storage card.
                concepts.extend(_inner_concepts(tok, syn))
    runs.append(run)
    # English phrases written with spaces ("out of range") are listed without them.
    squeezed = norm.replace(" ", "")
    if squeezed != norm:
        for surface, groups in syn.items():
            if len(surface) > 5 and surface.isascii() and surface in squeezed:
                concepts.extend(groups)
    bigrams: list[str] = []
    for chunk in runs:
        for cjk in _CJK_RUN_RE.findall(chunk):
            for i in range(len(cjk) - 1):
                a, b = cjk[i], cjk[i + 1]
                if a in _FUNCTION_CHARS or b in _FUNCTION_CHARS:
                    continue
                bigrams.append(a + b)
    return Terms(
        tuple(dict.fromkeys(concepts)), tuple(dict.fromkeys(words)), tuple(dict.fromkeys(bigrams))
    )


def has_cjk(text: str) -> bool:
    """True if ``text`` contains a CJK ideograph."""
    return _CJK_RE.search(text) is not None


def has_wordlike(text: str) -> bool:
    """True if ``text`` has any letter, digit or ideograph (not only emoji or punctuation)."""
    return _WORDLIKE_RE.search(text) is not None


def is_ascii_word(text: str) -> bool:
    """True if ``text`` is made of ASCII letters/digits/spaces only."""
    return all(c.isascii() for c in text) and _ASCII_ALNUM_RE.search(text) is not None
