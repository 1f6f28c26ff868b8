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
