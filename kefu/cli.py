"""Command-line tools: ``flask --app wsgi kb ...`` and ``flask --app wsgi demo``."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import OperationalError

from . import accounts, dialog, evaluation, integrations, kb
from .extensions import db
from .imports import ImportError_, fail
from .models import KbEntry, UnansweredQuestion
from .wechat import WeChatApiError

kb_cli = AppGroup("kb", help="Knowledge base: import, export, evaluate.")


def _require_schema() -> None:
    """A clear error, not a traceback, when the database is unreachable or not migrated."""
    try:
        ready = inspect(db.engine).has_table(KbEntry.__tablename__)
    except OperationalError as exc:
        message = f"无法连接数据库 / cannot reach the database: {exc.orig}"
        raise click.ClickException(message) from exc
    if not ready:
        raise click.ClickException(
            "数据库尚未初始化，请先运行 / the database has no tables yet, run first: "
            "flask --app wsgi db upgrade"
        )


@kb_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--defer-index",
    is_flag=True,
    help="Commit the entries at once and let the workers build the search index in the "
    "background (they answer from the previous index meanwhile).",
)
def kb_import(path: Path, defer_index: bool) -> None:
    """Import (upsert by id) a JSON Lines or CSV knowledge-base file; all or nothing.

    The new revision's search index is built and saved before the entries are committed, so
    every worker (and one restarted under load) maps it at once instead of building it.
    """
    _require_schema()
    try:
        rows = kb.read_file(path)
    except ImportError_ as exc:
        fail(exc.errors, "条目")
    created, updated = kb.upsert(rows)
    if not defer_index:
        started = time.monotonic()
        index = kb.build_pending_index(IndexProgress())
        click.echo(
            f"索引已保存 / index saved: {len(index)} entries in {time.monotonic() - started:.1f} s"
        )
    db.session.commit()
    unchanged = len(rows) - created - updated
    click.echo(
        f"已导入 {len(rows)} 条 / imported {len(rows)} entries: "
        f"{created} new, {updated} updated, {unchanged} unchanged."
    )


@kb_cli.command("index")
def kb_index() -> None:
    """Build and save the search index of the stored KB (a no-op when it is saved already)."""
    _require_schema()
    started = time.monotonic()
    index = kb.load_or_build_index(kb.current_revision(), progress=IndexProgress())
    click.echo(
        f"索引已就绪 / index ready: {len(index)} entries in {time.monotonic() - started:.1f} s"
    )


class IndexProgress:
    """Prints how many texts are embedded so far (on stderr, at most once a second)."""

    def __init__(self) -> None:
        self._shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total and (done == total or now - self._shown >= 1.0):
            self._shown = now
            end = "\n" if done == total else ""
            click.echo(
                f"\r嵌入 / embedding: {done}/{total} texts ({done / total:.0%})",
                nl=bool(end),
                err=True,
            )


@kb_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None)
def kb_export(fmt: str, out: Path | None) -> None:
    """Write the knowledge base as JSON Lines (default) or CSV, to --out or standard output."""
    _require_schema()
    data = kb.export(fmt)
    if out is None:
        click.echo(data, nl=False)
        return
    out.write_text(data, encoding="utf-8")
    click.echo(
        f"exported {data.count(chr(10)) - (1 if fmt == 'csv' else 0)} entries to {out}", err=True
    )


@kb_cli.command("eval")
@click.argument("questions", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--kb",
    "kb_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Use this KB file for the run instead of the stored one (nothing is saved).",
)
@click.option(
    "--audience",
    type=click.Choice(["installer", "end_user"]),
    default="installer",
    help="Who the askers are taken to be. Installers see every entry (default); end users are "
    "told that installer-only entries are for installers.",
)
@click.option("--show-misses/--no-show-misses", default=True)
def kb_eval(questions: Path, kb_path: Path | None, audience: str, show_misses: bool) -> None:
    """Run labelled messages through the live dialog, each as a new user; print per-class figures.

    QUESTIONS is JSON Lines of {"text", "expect"} where expect is a KB id, "none" or "human".
    Everything happens in one transaction that is rolled back: the database is left as it was.
    """
    _require_schema()
    try:
        cases = evaluation.load_cases(questions)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    scores = evaluation.Scores()
    try:
        if kb_path is not None:
            db.session.execute(delete(KbEntry))
            kb.upsert(kb.read_file(kb_path))
            db.session.flush()
        known = db.session.scalars(select(KbEntry.id)).all()
        missing = evaluation.missing_ids(cases, known)
        if missing:
            # Usually the wrong KB: the labelled set was written for another one (or --kb was
            # forgotten), and every one of these messages would count as a miss.
            share = sum(c.expect in set(missing) for c in cases) / len(cases)
            click.echo(
                f"warning: {len(missing)} expected entry ids are not in the KB being evaluated "
                f"({100 * share:.0f}% of the messages), e.g. {', '.join(missing[:5])}; "
                "pass the KB they were written for with --kb",
                err=True,
            )
        visible = dialog.INSTALLER if audience == "installer" else dialog.END_USER
        click.echo(f"asking as: {audience}", err=True)
        latencies: list[float] = []
        started = time.perf_counter()
        with click.progressbar(list(enumerate(cases)), label="evaluating", file=sys.stderr) as bar:
            for i, case in bar:
                t0 = time.perf_counter()
                reply = dialog.respond(f"eval-{i}-{time.time_ns()}", case.text, audiences=visible)
                latencies.append(time.perf_counter() - t0)
                scores.add(case, _result(reply))
    finally:
        db.session.rollback()
    elapsed = time.perf_counter() - started
    click.echo("")
    click.echo(scores.report())
    if latencies:
        ordered = sorted(latencies)
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        click.echo(
            f"dialog latency         p50 {p50:.1f} ms, p99 {p99:.1f} ms over "
            f"{len(ordered)} messages ({elapsed:.1f} s)"
        )
    if show_misses and scores.misses:
        click.echo("\nmisses (expected -> got):")
        for case, result in scores.misses:
            click.echo(f"  {case.text!r}: {case.expect} -> {result.label}")


def _result(reply: dialog.Reply) -> evaluation.Result:
    """A dialog reply in the evaluation's terms (a person already on it counts as handed off)."""
    if reply.outcome == "answer":
        return evaluation.Result("answer", reply.entry_id, reason=reply.reason)
    if reply.outcome in {"handoff", "with_human"}:
        return evaluation.Result("handoff", reason=reply.reason)
    if reply.outcome == "clarify":
        return evaluation.Result("clarify", choices=reply.choices, reason=reply.reason)
    return evaluation.Result("none", reason=reply.reason)


@kb_cli.command("unanswered")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def kb_unanswered(days: int, limit: int) -> None:
    """List the questions the bot could not answer, most frequent first, for the KB team."""
    _require_schema()
    since = datetime.now(UTC) - timedelta(days=days)
    rows = db.session.execute(
        select(
            UnansweredQuestion.text,
            func.count().label("times"),
            func.max(UnansweredQuestion.best_guess).label("closest"),
        )
        .where(UnansweredQuestion.created_at >= since)
        .group_by(UnansweredQuestion.text)
        .order_by(func.count().desc(), UnansweredQuestion.text)
        .limit(limit)
    ).all()
    if not rows:
        click.echo(f"最近 {days} 天没有未解答的问题 / no unanswered questions in {days} days.")
        return
    click.echo(f"{'times':>5}  {'closest entry':<24}  question")
    for row in rows:
        click.echo(f"{row.times:>5}  {row.closest or '-':<24}  {row.text}")


wechat_cli = AppGroup("wechat", help="The official account's server API.")


@wechat_cli.command("menu")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def wechat_menu(path: Path) -> None:
    """Publish the custom menu in PATH (WeChat's menu JSON); CLICK keys map via WECHAT_MENU_KEYS."""
    try:
        menu = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: 不是有效的 JSON / not valid JSON: {exc}") from exc
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list):
        raise click.ClickException(f'{path}: 缺少 "button" 列表 / missing the "button" list')
    try:
        integrations.api_client().create_menu(menu)
    except (RuntimeError, WeChatApiError) as exc:
        raise click.ClickException(f"菜单发布失败 / menu not published: {exc}") from exc
    click.echo(f"菜单已发布 / menu published: {len(menu['button'])} top-level buttons.")


def init_app(app: Flask) -> None:
    """Register the command groups on ``app``."""
    app.cli.add_command(kb_cli)
    app.cli.add_command(wechat_cli)
    from .catalog import cli as catalog_cli

    catalog_cli.init_app(app)
    accounts.init_app(app)
    from . import handoffs, staff

    staff.init_app(app)
    handoffs.init_app(app)
    from .tickets import cli as tickets_cli

    tickets_cli.init_app(app)
