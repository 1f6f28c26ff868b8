"""Spelling by sound, against the knowledge base's own vocabulary.

People type Chinese with pinyin input methods, so a slip picks a character of the same sound
(指问锁 for 指纹锁, 门玲 for 门铃, 发漂 for 发票), and some type the pinyin itself ("mensuo meidian
le"). Both are repaired with the vocabulary of the KB being searched: a word or character pair
the KB never uses, whose toneless pinyin is that of a word the KB does use, is read as that word;
a run of Latin letters that splits entirely into the pinyin of KB words is read as those words.
No list of typos is kept: what can be corrected follows from the KB.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from .prep import cjk_runs, words

__all__ = ["Speller"]

_LETTERS_RE = re.compile(r"[a-z]+(?: [a-z]+)*")
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Pinyin keys shorter than this (in letters) are too ambiguous to read a Latin word as Chinese:
# "ma", "de" and "an" are English as often as they are pinyin.
_MIN_KEY_LETTERS = 4


@lru_cache(maxsize=65536)
def pinyin_key(text: str) -> str:
    """Toneless pinyin of ``text`` without separators ("门铃" -> "menling")."""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(text))


@lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Every toneless pinyin syllable (from pypinyin's character table)."""
    from pypinyin import Style, pinyin_dict
    from pypinyin.style import convert

    out: set[str] = set()
    for value in pinyin_dict.pinyin_dict.values():
        for reading in value.split(","):
            out.add(convert(reading, Style.NORMAL, strict=True))
    return frozenset(s for s in out if s.isascii() and s.isalpha())


class Speller:
    """Sound-alike repair for one KB's vocabulary."""

    def __init__(self, by_sound: dict[str, str], known: Iterable[str]) -> None:
        self.by_sound = by_sound  # pinyin key -> the KB word with that sound
        self.known = frozenset(known)  # every word and character pair the KB writes
        self._longest = max((len(k) for k in by_sound), default=0)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Speller:
        """Learn the KB's Chinese words (2-4 characters) and their sounds from prepared texts."""
        counts: Counter[str] = Counter()
        pairs: set[str] = set()
        for text in texts:
            for w in words(text):
                if 2 <= len(w) <= 4 and all(_CJK_RE.match(ch) for ch in w):
                    counts[w] += 1
            for run in cjk_runs(text):
                pairs.update(run[i : i + 2] for i in range(len(run) - 1))
        by_sound: dict[str, str] = {}
        for w, _ in counts.most_common():
            by_sound.setdefault(pinyin_key(w), w)
        return cls(by_sound, set(counts) | pairs)

    def correct(self, prepared: str) -> str:
        """``prepared`` with pinyin runs and sound-alike slips replaced by KB words."""
        if not self.by_sound:
            return prepared
        text = _LETTERS_RE.sub(lambda m: self._pinyin_run(m.group()), prepared)
        return re.sub(
            r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", lambda m: self._cjk_run(m.group()), text
        )

    def _pinyin_run(self, run: str) -> str:
        """A Latin run read as pinyin: KB words where they fit, other syllables dropped."""
        letters = run.replace(" ", "")
        n = len(letters)
        # best[i]: (syllables left unread, words) for letters[:i]; a split must use only KB
        # words and real syllables, else the run is English, a code or a brand and stays.
        best: list[tuple[int, list[str]] | None] = [None] * (n + 1)
        best[0] = (0, [])
        for i in range(n):
            if best[i] is None:
                continue
            cost, out = best[i]  # type: ignore[misc]
            for j in range(i + 2, min(n, i + self._longest) + 1):
                piece = letters[i:j]
                word = self.by_sound.get(piece) if len(piece) >= _MIN_KEY_LETTERS else None
                step = (
                    (cost, [*out, word])
                    if word
                    else ((cost + 1, out) if piece in syllables() else None)
                )
                if step and (best[j] is None or step[0] < best[j][0]):  # type: ignore[index]
                    best[j] = step
        done = best[n]
        if done is None or not done[1] or done[0] > len(done[1]):
            return run
        return "".join(done[1])

    def _cjk_run(self, run: str) -> str:
        chars = list(run)
        i = 0
        while i < len(chars) - 1:
            pair = "".join(chars[i : i + 2])
            if pair not in self.known:
                word = self.by_sound.get(pinyin_key(pair))
                if word is not None and len(word) == 2 and word != pair:
                    # Only a pair the KB never writes is repaired, and only when one character
                    # of it is already right: two wrong characters are more likely a new word.
                    if word[0] == pair[0] or word[1] == pair[1]:
                        chars[i : i + 2] = list(word)
                        i += 2
                        continue
            i += 1
        return "".join(chars)
