"""Installer accounts: registration, approval by staff, login, WeChat binding, and their CLI.

Who is an installer is decided here and nowhere else: an approved account, reached by phone and
password or by the WeChat openid bound to it. Nothing here commits; callers own the transaction.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .catalog.models import Installer
from .extensions import db

MIN_PASSWORD_LENGTH = 8
# Mainland mobile numbers: 11 ASCII digits starting 13-19. ASCII only: Python's \d also matches
# Arabic-Indic, Devanagari and other digits, which would let a number that only looks like a
# registered one be registered again.
_PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$", re.ASCII)
# What people type around and in a number: full-width digits (Chinese input methods), spaces,
# dashes, dots and brackets in either width. Nothing else is mapped or dropped.
_PHONE_MAP = str.maketrans(
    {**{chr(0xFF10 + d): str(d) for d in range(10)}, "＋": "+"}
    | dict.fromkeys(" \u3000-－—.．()（）", None)
)
# Checked against when the phone is unknown, so a wrong phone costs as long as a wrong password
# and response time does not tell which phones have accounts.
_DUMMY_HASH = generate_password_hash("kefu-no-such-account")


class AccountError(ValueError):
    """Registration input that cannot be accepted; ``code`` says which rule it broke."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def normalise_phone(raw: str) -> str:
    """A typed phone number with full-width digits made ASCII, separators and +86/0086 dropped.

    Any other character (other scripts' digits, zero-width or control characters) is kept, so
    the result is not a valid number: see :func:`mainland_mobile`.
    """
    digits = (raw or "").strip().translate(_PHONE_MAP)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits


def mainland_mobile(raw: str) -> str | None:
    """The mainland mobile number typed in ``raw`` as 11 ASCII digits, or None if it is not one.

    The one rule for phone numbers: registration, login, staff commands and service requests all
    go through it, so one number has one spelling and a lookalike cannot pass as another.
    """
    phone = normalise_phone(raw)
    return phone if _PHONE_RE.match(phone) else None


def clean_text(raw: str | None, max_length: int) -> str | None:
    """A name or company as stored: NFKC-normalised (full-width letters and digits made
    ordinary), spaces collapsed; None when empty, too long, or with control, format
    (zero-width, bidi) or unassigned characters."""
    text = " ".join(unicodedata.normalize("NFKC", raw or "").split())
    if not text or len(text) > max_length:
        return None
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        return None
    return text


def by_phone(phone: str) -> Installer | None:
    """The account registered with ``phone`` (any status)."""
    canonical = mainland_mobile(phone)
    if canonical is None:
        return None
    return db.session.scalar(select(Installer).where(Installer.phone == canonical))


def register(phone: str, password: str, name: str, company: str) -> Installer:
    """Create a pending account; raises :class:`AccountError` on invalid or duplicate input."""
    canonical = mainland_mobile(phone)
    if canonical is None:
        raise AccountError("phone_invalid")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError("password_short")
    clean_name, clean_company = clean_text(name, 100), clean_text(company, 200)
    if clean_name is None:
        raise AccountError("name_invalid")
    if clean_company is None:
        raise AccountError("company_invalid")
    if by_phone(canonical) is not None:
        raise AccountError("phone_taken")
    installer = Installer(phone=canonical, name=clean_name, company=clean_company, status="pending")
    installer.set_password(password)
    db.session.add(installer)
    db.session.flush()
    return installer


def authenticate(phone: str, password: str) -> Installer | None:
    """The account whose phone and password match (any status), else None."""
    installer = by_phone(phone)
    if installer is None or not installer.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    return installer if installer.check_password(password or "") else None


def load_installer(user_id: str) -> Installer | None:
    """Flask-Login's user loader: the account behind a session's id."""
    try:
        return db.session.get(Installer, int(user_id))
    except (TypeError, ValueError):
        return None


def approved_by_openid(openid: str) -> Installer | None:
    """The approved account bound to this WeChat openid, if any."""
    if not openid:
        return None
    return db.session.scalar(
        select(Installer).where(Installer.wechat_openid == openid, Installer.status == "approved")
    )


def bind_openid(installer: Installer, openid: str) -> bool:
    """Tie ``openid`` to ``installer`` unless either is already bound elsewhere; True if bound."""
    if not openid or installer.wechat_openid == openid:
        return bool(openid)
    if installer.wechat_openid is not None:
        return False
    taken = db.session.scalar(select(Installer.id).where(Installer.wechat_openid == openid))
    if taken is not None:
        return False
    installer.wechat_openid = openid
    return True


def forget_openid(openid: str) -> None:
    """Unbind a WeChat user who unfollowed; the installer logs in by phone or binds again."""
    db.session.execute(
        update(Installer).where(Installer.wechat_openid == openid).values(wechat_openid=None)
    )


def approve(installer: Installer) -> None:
    """Let the account see installer content."""
    installer.status = "approved"
    installer.approved_at = datetime.now(UTC)


def reject(installer: Installer) -> None:
    """Refuse (or withdraw) installer access; the account can no longer log in."""
    installer.status = "rejected"
    installer.approved_at = None


installers_cli = AppGroup("installers", help="Installer accounts: list, approve, reject.")


@installers_cli.command("list")
@click.option(
    "--status", type=click.Choice(["pending", "approved", "rejected", "all"]), default="all"
)
def installers_list(status: str) -> None:
    """List accounts, oldest first: phone, status, name, company, registration time."""
    query = select(Installer).order_by(Installer.created_at, Installer.id)
    if status != "all":
        query = query.where(Installer.status == status)
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("没有账号 / no accounts.")
        return
    for row in rows:
        wechat = "wechat" if row.wechat_openid else "-"
        created = row.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{row.phone}\t{row.status}\t{row.name}\t{row.company}\t{created}\t{wechat}")


def _decide(phone: str, action: str) -> None:
    installer = by_phone(phone)
    if installer is None:
        click.echo(f"没有这个手机号的账号 / no account with phone {phone}", err=True)
        sys.exit(1)
    if action == "approve":
        approve(installer)
    else:
        reject(installer)
    db.session.commit()
    click.echo(f"{installer.phone} {installer.name} ({installer.company}): {installer.status}")


@installers_cli.command("approve")
@click.argument("phone")
def installers_approve(phone: str) -> None:
    """Approve the account registered with PHONE."""
    _decide(phone, "approve")


@installers_cli.command("reject")
@click.argument("phone")
def installers_reject(phone: str) -> None:
    """Reject the account registered with PHONE (also withdraws an earlier approval)."""
    _decide(phone, "reject")


def init_app(app: Flask) -> None:
    """Register the ``installers`` command group."""
    app.cli.add_command(installers_cli)
