"""Warranty rules: the one place that decides when a device's warranty starts and ends."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from flask import current_app, has_app_context

from .. import timeutil
from .models import Device, InstallationStatus

Basis = Literal["purchase", "installation", "ship", "override", "unknown"]
DEFAULT_SHIP_GRACE_DAYS = 90

BASIS_LABELS: dict[str, tuple[str, str]] = {
    "purchase": ("购买凭证日期", "proof of purchase"),
    "installation": ("安装登记日期", "installation registration"),
    "ship": ("出厂日期加宽限期", "ship date plus grace period"),
    "override": ("人工指定的截止日期", "end date set by staff"),
    "unknown": ("无可用日期", "no date on record"),
}


@dataclass(frozen=True)
class WarrantyStatus:
    """In or out of warranty, the covered period and the date it was computed from."""

    in_warranty: bool
    start: date | None
    end: date | None  # last day covered, inclusive
    basis: Basis
    months: int  # the series' warranty length
    extension_months: int  # added for this device

    @property
    def basis_label(self) -> tuple[str, str]:
        """The basis in words: (Chinese, English)."""
        return BASIS_LABELS[self.basis]


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` months, clamped to the month end (Jan 31 + 1 -> Feb 28)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def ship_grace_days() -> int:
    """Days between shipping and the start of a warranty known only by its ship date."""
    if has_app_context():
        return int(current_app.config.get("WARRANTY_SHIP_GRACE_DAYS", DEFAULT_SHIP_GRACE_DAYS))
    return DEFAULT_SHIP_GRACE_DAYS


def compute(device: Device, today: date | None = None) -> WarrantyStatus:
    """The warranty of ``device`` on ``today`` (default: today on the maker's calendar)."""
    if today is None:
        today = timeutil.today()
    months = device.model.series.warranty_months
    extension = device.warranty_extension_months or 0
    # Precedence: the customer's proof of purchase is the strongest evidence, then the
    # installer's registration, then the factory ship date plus the time it sits with dealers.
    # A registration outside the window after shipping is flagged for staff and not used.
    start: date | None
    basis: Basis
    if device.purchase_date is not None:
        start, basis = device.purchase_date, "purchase"
    elif (
        device.installed_on is not None and device.installation_status != InstallationStatus.FLAGGED
    ):
        start, basis = device.installed_on, "installation"
    elif device.ship_date is not None:
        start, basis = device.ship_date + timedelta(days=ship_grace_days()), "ship"
    else:
        start, basis = None, "unknown"

    end: date | None
    if device.warranty_end_override is not None:
        # Staff decisions (goodwill, contracts) win over every computed date.
        end, basis = device.warranty_end_override, "override"
    elif start is not None:
        end = add_months(start, months + extension) - timedelta(days=1)
    else:
        end = None
    return WarrantyStatus(
        in_warranty=end is not None and today <= end,
        start=start,
        end=end,
        basis=basis,
        months=months,
        extension_months=extension,
    )
