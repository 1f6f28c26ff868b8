"""Installer accounts: registration, approval by staff, login, WeChat binding, and their CLI.

Who is an installer is decided here and nowhere else: an approved account, reached by phone and
password or by the WeChat openid bound to it. Nothing here commits; callers own the transaction.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .catalog.models import Installer
from .extensions import db

MIN_PASSWORD_LENGTH = 8
# Mainland mobile numbers: 11 digits starting 13-19.
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# Checked against when the phone is unknown, so a wrong phone costs as long as a wrong password
# and response time does not tell which phones have accounts.
_DUMMY_HASH = generate_password_hash("kefu-no-such-account")


class AccountError(ValueError):
    """Registration input that cannot be accepted; ``code`` says which rule it broke."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def normalise_phone(raw: str) -> str:
    """Digits only, without a +86 / 0086 country prefix."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits


def by_phone(phone: str) -> Installer | None:
    """The account registered with ``phone`` (any status)."""
    return db.session.scalar(select(Installer).where(Installer.phone == normalise_phone(phone)))


def register(phone: str, password: str, name: str, company: str) -> Installer:
    """Create a pending account; raises :class:`AccountError` on invalid or duplicate input."""
    phone = normalise_phone(phone)
    name, company = (name or "").strip(), (company or "").strip()
    if not _PHONE_RE.match(phone):
        raise AccountError("phone_invalid")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError("password_short")
    if not name or len(name) > 100:
        raise AccountError("name_invalid")
    if not company or len(company) > 200:
        raise AccountError("company_invalid")
    if by_phone(phone) is not None:
        raise AccountError("phone_taken")
    installer = Installer(phone=phone, name=name, company=company, status="pending")
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
