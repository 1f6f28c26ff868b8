"""The QR mini-site: device pages, warranty lookup, installer accounts and batch lookup."""

from . import digital_link, errors, installers, media, pages, repair, video
from .blueprint import bp

__all__ = ["bp", "digital_link", "errors", "installers", "media", "pages", "repair", "video"]
