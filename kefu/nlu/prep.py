"""Message preparation: one canonical script and width, and the tokens retrieval reads.

Everything here is language-generic: Traditional characters (Hong Kong, Taiwan) become Simplified
through OpenCC, written Cantonese (Hong Kong) becomes standard written Chinese (``cantonese.txt``:
the dialect's grammar words, which a model and a KB written in Mandarin do not read), full-width
forms become ASCII through NFKC, emoji and symbols become spaces, and the tokens are jieba words
plus overlapping character bigrams (which survive segmentation differences and most typos). No
domain word list is consulted.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from functools import cache, lru_cache
from typing import Any

from .text import data_lines

__all__ = ["bigrams", "cjk_runs", "mandarin", "prepare", "simplified", "tokens", "words"]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_KEEP_RE = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\-]+")
_CJK_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ASCII_RE = re.compile(r"[0-9a-z][0-9a-z\-]*")
_CJK_CHAR_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Grammatical particles and pronouns: they occur in every sentence, so as bigram halves they
# only add noise ("的灯", "我家"). This is the closed class of the language, not domain words.
_FUNCTION_CHARS = frozenset(
    "的了吗呢啊吧呀哦嘛么哈啦喔噢诶哎唉呗咯嗯我你您他她它们是这那个就都也还很把被让给"
)
_lock = threading.Lock()


@cache
def _opencc() -> Any:
    import opencc

    # Taiwan and Hong Kong phrasings share most characters with the mainland once converted;
    # "t2s" converts characters and common phrases and leaves Simplified text unchanged.
    return opencc.OpenCC("t2s")


@cache
def _jieba() -> Any:
    with _lock, warnings.catch_warnings():
        # jieba 0.42 warns about pkg_resources and regex escapes on import.
        warnings.simplefilter("ignore")
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tok = jieba.Tokenizer()
        tok.initialize()
        return tok


def simplified(text: str) -> str:
    """``text`` in Simplified characters (Traditional converted, everything else unchanged)."""
    return _opencc().convert(text or "")


@lru_cache(maxsize=4096)
def prepare(text: str) -> str:
    """Simplified, half-width, lower-case text with symbols and emoji turned into spaces."""
    text = unicodedata.normalize("NFKC", text or "").translate(_ZERO_WIDTH).lower()
    text = mandarin(_opencc().convert(text))
    return " ".join(_KEEP_RE.sub(" ", text).split())


@cache
def _cantonese() -> tuple[frozenset[str], tuple[str, ...], re.Pattern[str], dict[str, str]]:
    marks: frozenset[str] = frozenset()
    sure: list[str] = []
    table: dict[str, str] = {}
    for line in data_lines("cantonese.txt"):
        source, _, target = line.partition("\t")
        if source == "marks":
            marks = frozenset(target.strip())
            continue
        source = source.strip()
        if source.startswith("*"):
            source = source[1:]
            sure.append(source)
        table[source] = target.strip()
    words = "|".join(map(re.escape, sorted(table, key=len, reverse=True)))
    # 系 is "to be" in Cantonese, except in the Mandarin words written with it.
    pattern = re.compile(f"{words}|{_CANTONESE_XI}")
    return marks, tuple(sure), pattern, table


# Mandarin words with 系 (after Simplification): 系统, 系列, 关系, 联系, 体系, ...
_CANTONESE_XI = r"(?<![关联体派维世星院谱母直干])系(?![统列数])"


def mandarin(text: str) -> str:
    """Simplified ``text`` in standard written Chinese when it is written Cantonese."""
    marks, sure, pattern, table = _cantonese()
    if marks.isdisjoint(text) and not any(w in text for w in sure):
        return text
    return pattern.sub(lambda m: table.get(m.group(), "是"), text)


def cjk_runs(prepared: str) -> list[str]:
    """The runs of Chinese characters in prepared text."""
    return _CJK_RUN_RE.findall(prepared)


def words(prepared: str) -> list[str]:
    """jieba words (Chinese) and ASCII words (model codes, English, pinyin) of prepared text."""
    out: list[str] = []
    for chunk in prepared.split(" "):
        pos = 0
        for m in _CJK_RUN_RE.finditer(chunk):
            out.extend(_ASCII_RE.findall(chunk[pos : m.start()]))
            out.extend(w for w in _jieba().cut(m.group(), HMM=True) if w.strip())
            pos = m.end()
        out.extend(_ASCII_RE.findall(chunk[pos:]))
    return out


def bigrams(run: str) -> list[str]:
    """Overlapping character pairs of a Chinese run, without pairs of two function characters."""
    return [
        run[i : i + 2]
        for i in range(len(run) - 1)
        if not (run[i] in _FUNCTION_CHARS and run[i + 1] in _FUNCTION_CHARS)
    ]


def tokens(prepared: str) -> list[str]:
    """Retrieval tokens: "w:" words (single function characters dropped) and "b:" bigrams."""
    return list(_tokens(prepared))


@lru_cache(maxsize=8192)
def _tokens(prepared: str) -> tuple[str, ...]:
    out = [
        "w:" + w
        for w in words(prepared)
        if not (len(w) == 1 and (w in _FUNCTION_CHARS or not _CJK_CHAR_RE.match(w)))
    ]
    for run in cjk_runs(prepared):
        out.extend("b:" + b for b in bigrams(run))
    return tuple(out)
