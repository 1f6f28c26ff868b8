"""Staff accounts of the console: roles, passwords, API tokens, duty, and the ``staff`` CLI.

Who is staff is decided here and nowhere else. Nothing here commits except the CLI commands;
callers own the transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import UTCDateTime, utcnow

MIN_PASSWORD_LENGTH = 10
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
# Checked against when the username is unknown, so timing does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("kefu-no-such-staff")
TOKEN_PREFIX = "kefu_"


class Role(StrEnum):
    """What a staff member may do: agents work queues, supervisors also manage, admins all."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


RANK = {Role.AGENT: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


class SkillGroup(StrEnum):
    """The maker's dispatch lines; handoffs and tickets are routed to one of them."""

    GENERAL = "general"
    CAMERAS = "cameras"
    RECORDERS = "recorders"
    LOCKS = "locks"
    DOORBELLS = "doorbells"
    INSTALLERS = "installers"


def _in(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Staff(db.Model):  # type: ignore[name-defined]
    """A person who works in the console."""

    __tablename__ = "staff"
    __table_args__ = (CheckConstraint(f"role IN ({_in(Role)})", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.AGENT)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Skill groups this person takes work from (SkillGroup values).
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    # Round-robin: the on-duty member assigned longest ago gets the next conversation.
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def set_password(self, password: str) -> None:
        """Store a salted hash of ``password``."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def can(self, role: Role) -> bool:
        """Whether this person has at least ``role``."""
        return RANK[Role(self.role)] >= RANK[role]


class ApiToken(db.Model):  # type: ignore[name-defined]
    """A revocable bearer token for ``/api/v1``; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so a person can tell their tokens apart in `staff tokens`.
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staff: Mapped[Staff] = relationship()


class StaffError(ValueError):
    """Account input that cannot be accepted; ``code`` says which rule it broke."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def by_username(username: str) -> Staff | None:
    """The account called ``username`` (active or not)."""
    return db.session.scalar(select(Staff).where(Staff.username == username.strip().lower()))


def create(
    username: str, password: str, role: str, display_name: str = "", groups: list[str] | None = None
) -> Staff:
    """A new active account; raises :class:`StaffError` on invalid or duplicate input."""
    username = username.strip().lower()
    if not _USERNAME_RE.match(username):
        raise StaffError("username_invalid")
    if role not in {r.value for r in Role}:
        raise StaffError("role_invalid")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise StaffError("password_short")
    wanted = groups if groups is not None else [SkillGroup.GENERAL.value]
    if any(g not in {s.value for s in SkillGroup} for g in wanted):
        raise StaffError("group_invalid")
    if by_username(username) is not None:
        raise StaffError("username_taken")
    member = Staff(
        username=username,
        display_name=(display_name or username).strip()[:100],
        role=role,
        groups=list(dict.fromkeys(wanted)),
        active=True,
        on_duty=False,
    )
    member.set_password(password)
    db.session.add(member)
    db.session.flush()
    return member


def authenticate(username: str, password: str) -> Staff | None:
    """The active account whose username and password match, else None."""
    member = by_username(username or "")
    if member is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not member.check_password(password or "") or not member.active:
        return None
    return member


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(member: Staff) -> str:
    """A new API token for ``member``; the caller shows it once, only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(staff_id=member.id, token_hash=_hash(token), hint=token[:10]))
    return token


def by_token(token: str, now: datetime | None = None) -> Staff | None:
    """The active account holding this unrevoked token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.staff.active:
        return None
    row.last_used_at = now or datetime.now(UTC)
    return row.staff


def revoke_tokens(member: Staff, now: datetime | None = None) -> int:
    """Revoke every live token of ``member``; returns how many."""
    rows = db.session.scalars(
        select(ApiToken).where(ApiToken.staff_id == member.id, ApiToken.revoked_at.is_(None))
    ).all()
    for row in rows:
        row.revoked_at = now or datetime.now(UTC)
    return len(rows)


def disable(member: Staff) -> None:
    """Stop the account: no login, no API, no new work; its tokens are revoked."""
    member.active = False
    member.on_duty = False
    revoke_tokens(member)


def load(staff_id: int | None) -> Staff | None:
    """The active account with this id."""
    if staff_id is None:
        return None
    member = db.session.get(Staff, staff_id)
    return member if member is not None and member.active else None


def colleagues() -> list[Staff]:
    """Active accounts, by name: whom work can be assigned to."""
    return list(
        db.session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.username))
    )


DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-console-1"


def demo(echo: Callable[[str], object] = print) -> None:
    """The demo's console account: a supervisor in every group, on duty (safe to run again)."""
    member = by_username(DEMO_USERNAME)
    if member is None:
        member = create(
            DEMO_USERNAME, DEMO_PASSWORD, Role.SUPERVISOR, "演示客服", [g.value for g in SkillGroup]
        )
    member.on_duty = True
    db.session.commit()
    echo(f"客服工作台 / staff console: /console  {DEMO_USERNAME} / {DEMO_PASSWORD}")


# --- flask staff ... -------------------------------------------------------------------------

staff_cli = AppGroup("staff", help="Console staff accounts: add, list, disable, API tokens.")

_ERRORS = {
    "username_invalid": "用户名须为 2-32 位小写字母、数字或 ._- / username: 2-32 of a-z 0-9 . _ -",
    "role_invalid": "角色只能是 agent/supervisor/admin / role must be agent, supervisor or admin",
    "password_short": f"密码至少 {MIN_PASSWORD_LENGTH} 位 / at least {MIN_PASSWORD_LENGTH} chars",
    "group_invalid": "技能组无效 / unknown skill group",
    "username_taken": "用户名已存在 / that username is taken",
}


def _read_password() -> str:
    # A terminal gets a hidden, confirmed prompt; a pipe (scripts, CI) gives the first line.
    if sys.stdin.isatty():
        return str(click.prompt("密码 / password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@staff_cli.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="agent")
@click.option("--name", "display_name", default="", help="Name shown to colleagues.")
@click.option(
    "--group",
    "groups",
    multiple=True,
    type=click.Choice([g.value for g in SkillGroup]),
    help="Skill group (repeatable); default: general.",
)
def staff_add(username: str, role: str, display_name: str, groups: tuple[str, ...]) -> None:
    """Create an account; the password comes from a prompt, or standard input when piped."""
    password = _read_password()
    try:
        member = create(username, password, role, display_name, list(groups) or None)
    except StaffError as exc:
        raise click.ClickException(_ERRORS[exc.code]) from exc
    from . import audit

    audit.record("system", "staff.add", "staff", member.id, after={"role": role})
    db.session.commit()
    click.echo(f"已创建 / created: {member.username} ({member.role}, {', '.join(member.groups)})")


@staff_cli.command("list")
def staff_list() -> None:
    """List accounts: username, role, active, groups, on duty, last login."""
    rows = db.session.scalars(select(Staff).order_by(Staff.username)).all()
    if not rows:
        click.echo("没有账号 / no accounts.")
        return
    for row in rows:
        last = row.last_login_at.strftime("%Y-%m-%d %H:%M") if row.last_login_at else "-"
        state = "active" if row.active else "disabled"
        duty = "on-duty" if row.on_duty else "-"
        click.echo(f"{row.username}\t{row.role}\t{state}\t{','.join(row.groups)}\t{duty}\t{last}")


def _existing(username: str) -> Staff:
    member = by_username(username)
    if member is None:
        raise click.ClickException(f"没有这个用户 / no account named {username}")
    return member


@staff_cli.command("disable")
@click.argument("username")
def staff_disable(username: str) -> None:
    """Disable an account (it can no longer log in; its API tokens are revoked)."""
    from . import audit

    member = _existing(username)
    disable(member)
    audit.record("system", "staff.disable", "staff", member.id)
    db.session.commit()
    click.echo(f"已停用 / disabled: {member.username}")


@staff_cli.command("token")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="Revoke all of this account's tokens instead.")
def staff_token(username: str, revoke: bool) -> None:
    """Print a new API token for USERNAME (shown once), or revoke its tokens with --revoke."""
    from . import audit

    member = _existing(username)
    if revoke:
        count = revoke_tokens(member)
        audit.record("system", "staff.token_revoke", "staff", member.id, note=str(count))
        db.session.commit()
        click.echo(f"已吊销 {count} 个令牌 / revoked {count} tokens of {member.username}")
        return
    if not member.active:
        raise click.ClickException(f"账号已停用 / {member.username} is disabled")
    token = issue_token(member)
    audit.record("system", "staff.token_issue", "staff", member.id, note=token[:10])
    db.session.commit()
    click.echo(token)


def init_app(app: Flask) -> None:
    """Register the ``staff`` command group."""
    app.cli.add_command(staff_cli)
