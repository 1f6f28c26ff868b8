"""Catalogue and device models: series, product models, documents, installers and devices."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import UTCDateTime, utcnow

CATEGORIES = ("camera", "nvr", "doorbell", "lock")
AUDIENCES = ("all", "installer")
INSTALLER_STATUSES = ("pending", "approved", "rejected")


class InstallationStatus(StrEnum):
    """Whether an installer's registered date is the warranty basis."""

    COUNTED = "counted"  # within INSTALL_WINDOW_DAYS of shipping: the warranty may start then
    FLAGGED = "flagged"  # outside the window (or no ship date): kept for staff, not used


def _in_check(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


def new_token() -> str:
    """A fresh device link token: 128 random bits, never derived from the serial."""
    return secrets.token_urlsafe(16)


class Series(db.Model):  # type: ignore[name-defined]
    """A product series; its warranty length applies to every model in it."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))  # one of CATEGORIES
    warranty_months: Mapped[int] = mapped_column(Integer)

    models: Mapped[list[ProductModel]] = relationship(
        back_populates="series", order_by="ProductModel.code"
    )


class ProductModel(db.Model):  # type: ignore[name-defined]
    """A product model (SKU family) with its photo, manuals, videos and firmware."""

    __tablename__ = "product_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    summary: Mapped[str] = mapped_column(String(500), default="")
    # A media path relative to MEDIA_ROOT, or an absolute URL.
    photo: Mapped[str | None] = mapped_column(String(500))

    series: Mapped[Series] = relationship(back_populates="models")
    manuals: Mapped[list[Manual]] = relationship(
        back_populates="model",
        order_by=lambda: (Manual.sort, Manual.id),
        cascade="all, delete-orphan",
    )
    videos: Mapped[list[Video]] = relationship(
        back_populates="model",
        order_by=lambda: (Video.sort, Video.id),
        cascade="all, delete-orphan",
    )
    # Newest first: the page shows the latest release on top.
    firmware: Mapped[list[Firmware]] = relationship(
        back_populates="model",
        order_by=lambda: (Firmware.released_on.desc(), Firmware.id.desc()),
        cascade="all, delete-orphan",
    )


class Manual(db.Model):  # type: ignore[name-defined]
    """A PDF document for a model; ``audience`` "installer" hides it from end users."""

    __tablename__ = "manuals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("product_models.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    file: Mapped[str] = mapped_column(String(500))  # media path or absolute URL
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    audience: Mapped[str] = mapped_column(String(16), default="all")
    sort: Mapped[int] = mapped_column(Integer, default=0)

    model: Mapped[ProductModel] = relationship(back_populates="manuals")


class Video(db.Model):  # type: ignore[name-defined]
    """A how-to video for a model."""

    __tablename__ = "videos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("product_models.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))  # media path or absolute URL
    poster: Mapped[str | None] = mapped_column(String(500))
    duration_s: Mapped[int] = mapped_column(Integer, default=0)
    audience: Mapped[str] = mapped_column(String(16), default="all")
    sort: Mapped[int] = mapped_column(Integer, default=0)

    model: Mapped[ProductModel] = relationship(back_populates="videos")


class Firmware(db.Model):  # type: ignore[name-defined]
    """A firmware release for a model, with release notes and the file's SHA-256."""

    __tablename__ = "firmware"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("product_models.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(64))
    released_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(500))  # media path or absolute URL

    model: Mapped[ProductModel] = relationship(back_populates="firmware")


class Installer(UserMixin, db.Model):  # type: ignore[name-defined]
    """An installer or dealer account; only approved accounts see installer content."""

    __tablename__ = "installers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100))
    company: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # INSTALLER_STATUSES
    wechat_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Flask-Login treats only approved accounts as active."""
        return self.status == "approved"

    def set_password(self, password: str) -> None:
        """Store a salted hash of ``password``."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches the stored hash (False when none is set)."""
        if not self.password_hash:
            return False
        return check_password_hash(self.password_hash, password)


class Device(db.Model):  # type: ignore[name-defined]
    """One physical device, reached by its QR link token."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("product_models.id"), index=True)
    gtin: Mapped[str | None] = mapped_column(String(14))
    ship_date: Mapped[date | None] = mapped_column(Date)
    purchase_date: Mapped[date | None] = mapped_column(Date)  # proof of purchase
    installed_on: Mapped[date | None] = mapped_column(Date)  # installation registration
    installer_id: Mapped[int | None] = mapped_column(ForeignKey("installers.id"), index=True)
    dealer: Mapped[str | None] = mapped_column(String(200))
    warranty_extension_months: Mapped[int] = mapped_column(Integer, default=0)
    warranty_end_override: Mapped[date | None] = mapped_column(Date)
    # How an installer's registration counts (None: no registration, or a date staff imported).
    installation_status: Mapped[str | None] = mapped_column(String(16))
    # The QR link: random, never derived from the serial; replaced on revoke.
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    model: Mapped[ProductModel] = relationship()
    installer: Mapped[Installer | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            _in_check("installation_status", InstallationStatus), name="installation_status"
        ),
    )


class KbEntryProduct(db.Model):  # type: ignore[name-defined]
    """Ties a knowledge-base entry to a model code ("AS-C3H") or a category ("camera")."""

    __tablename__ = "kb_entry_products"

    kb_entry_id: Mapped[str] = mapped_column(
        ForeignKey("kb_entries.id", ondelete="CASCADE"), primary_key=True
    )
    product: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
