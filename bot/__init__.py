"""The WeChat official-account webhook: verify -> decrypt -> parse -> dedupe -> dialog -> reply."""

from .webhook import bp

__all__ = ["bp"]
