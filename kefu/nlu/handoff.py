"""Lexical handoff triggers: asking for a person, anger, security-sensitive requests."""

from __future__ import annotations

from .prep import simplified
from .text import compact, load_lexicon, normalize

__all__ = ["HANDOFF_REASONS", "detect_handoff"]

# Checked in this order: a security request must reach a person even when it is also
# phrased as a request for one, and an angry customer outranks a polite "转人工".
HANDOFF_REASONS: tuple[tuple[str, str], ...] = (
    ("security", "handoff_security.txt"),
    ("angry", "handoff_angry.txt"),
    ("requested", "handoff_requested.txt"),
)


def detect_handoff(text: str) -> str | None:
    """Return "security", "angry" or "requested" if the message needs a person, else None."""
    # Traditional characters are converted first, so one pattern serves every script.
    norm = compact(normalize(simplified(text)))
    if not norm:
        return None
    for reason, name in HANDOFF_REASONS:
        if load_lexicon(name).find(norm) is not None:
            return reason
    return None
