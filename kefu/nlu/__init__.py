"""Understanding layer: match a Chinese support message to the KB, or decide not to."""

from __future__ import annotations

from . import dense
from .handoff import detect_handoff
from .hybrid import HybridIndex
from .index import KbIndex
from .text import normalize
from .types import Candidate, KbDoc, Understanding
from .understand import understand

__all__ = [
    "load_models",
    "dense",
    "Candidate",
    "KbDoc",
    "HybridIndex",
    "KbIndex",
    "Understanding",
    "detect_handoff",
    "normalize",
    "understand",
]


def load_models() -> None:
    """Load everything a first message would otherwise wait for (about 2 s in a new process).

    The sentence-embedding model, jieba's dictionary, OpenCC, pypinyin's tables and the
    handoff examples are read-only once loaded: gunicorn's master calls this before it forks
    (gunicorn.conf.py), so every worker, also one started by a HUP under load, begins with
    them in memory shared with its siblings instead of loading its own copy.
    """
    from . import handoff, spelling
    from .prep import prepare, tokens

    dense.embed(["预热"], query=True)
    tokens(prepare("預熱 摄像头离线 zhiwensuo"))
    spelling.pinyin_key("指纹锁")
    spelling.syllables()
    handoff.prototypes()
    detect_handoff("转人工")
