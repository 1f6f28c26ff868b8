"""The core's refusals: each carries its reason in Chinese and English for the page or chat."""

from __future__ import annotations


class BilingualError(ValueError):
    """A refused operation, with its reason in Chinese and English."""

    def __init__(self, zh: str, en: str, detail: str | None = None) -> None:
        super().__init__(detail if detail is not None else f"{zh} / {en}")
        self.zh = zh
        self.en = en

    def message(self, lang: str = "zh") -> str:
        """The reason in ``lang`` ("zh" or "en")."""
        return self.en if lang == "en" else self.zh
