"""The QR mini-site: device pages, warranty lookup, installer accounts and batch lookup."""

from . import errors, installers, pages
from .blueprint import bp

__all__ = ["bp", "errors", "installers", "pages"]
