"""Command-line tools: ``flask --app wsgi kb ...`` and ``flask --app wsgi demo``."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import delete, func, select

from . import accounts, dialog, integrations, kb
from .extensions import db
from .imports import ImportError_, fail
from .models import KbEntry, UnansweredQuestion
from .wechat import WeChatApiError

kb_cli = AppGroup("kb", help="Knowledge base: import, export, evaluate.")


@kb_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def kb_import(path: Path) -> None:
    """Import (upsert by id) a JSON Lines or CSV knowledge-base file; all or nothing."""
    try:
        rows = kb.read_file(path)
    except ImportError_ as exc:
        fail(exc.errors, "条目")
    created, updated = kb.upsert(rows)
    db.session.commit()
    unchanged = len(rows) - created - updated
    click.echo(
        f"已导入 {len(rows)} 条 / imported {len(rows)} entries: "
        f"{created} new, {updated} updated, {unchanged} unchanged."
    )


@kb_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None)
def kb_export(fmt: str, out: Path | None) -> None:
    """Write the knowledge base as JSON Lines (default) or CSV, to --out or standard output."""
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
    cases = []
    for number, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                item = json.loads(line)
                cases.append((str(item["text"]), str(item["expect"])))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise click.ClickException(f"{questions}:{number}: bad line ({exc})") from exc
    try:
        if kb_path is not None:
            db.session.execute(delete(KbEntry))
            kb.upsert(kb.read_file(kb_path))
            db.session.flush()
        visible = dialog.INSTALLER if audience == "installer" else dialog.END_USER
        click.echo(f"asking as: {audience}", err=True)
        counts: Counter[str] = Counter()
        misses: list[tuple[str, str, str]] = []
        latencies: list[float] = []
        started = time.perf_counter()
        with click.progressbar(list(enumerate(cases)), label="evaluating", file=sys.stderr) as bar:
            for i, (message, expect) in bar:
                t0 = time.perf_counter()
                reply = dialog.respond(f"eval-{i}-{time.time_ns()}", message, audiences=visible)
                latencies.append(time.perf_counter() - t0)
                got = _label(reply)
                cls = expect if expect in {"none", "human"} else "kb"
                counts[f"{cls}:total"] += 1
                counts[f"{cls}:{_verdict(cls, expect, got)}"] += 1
                if got != expect:
                    misses.append((message, expect, got))
    finally:
        db.session.rollback()
    _report(counts, latencies, time.perf_counter() - started)
    if show_misses and misses:
        click.echo("\nmisses (expected -> got):")
        for message, expect, got in misses:
            click.echo(f"  {message!r}: {expect} -> {got}")


def _label(reply: dialog.Reply) -> str:
    if reply.outcome == "answer":
        return reply.entry_id or "?"
    if reply.outcome in {"handoff", "with_human"}:
        return "human"
    if reply.outcome == "clarify":
        return "clarify"
    return "none"


def _verdict(cls: str, expect: str, got: str) -> str:
    if cls == "kb":
        if got == expect:
            return "correct"
        return {"none": "no_answer", "clarify": "clarified", "human": "handed_off"}.get(
            got, "wrong"
        )
    if cls == "none":
        if got == "none":
            return "kept_out"
        return {"clarify": "clarified", "human": "handed_off"}.get(got, "answered")
    return (
        "handed_off" if got == "human" else ("answered" if got not in {"none", "clarify"} else got)
    )


def _report(counts: Counter[str], latencies: list[float], elapsed: float) -> None:
    def pct(cls: str, key: str) -> str:
        total = counts[f"{cls}:total"]
        return (
            f"{counts[f'{cls}:{key}']:4d}  {100 * counts[f'{cls}:{key}'] / total:5.1f}%"
            if total
            else "   -"
        )

    click.echo("")
    click.echo(f"in-scope messages      {counts['kb:total']}")
    for key in ("correct", "wrong", "clarified", "no_answer", "handed_off"):
        click.echo(f"  {key:<20} {pct('kb', key)}")
    click.echo(f"out-of-scope messages  {counts['none:total']}")
    for key in ("kept_out", "clarified", "answered", "handed_off"):
        click.echo(f"  {key:<20} {pct('none', key)}")
    click.echo(f"handoff messages       {counts['human:total']}")
    for key in ("handed_off", "none", "clarify", "answered"):
        click.echo(f"  {key:<20} {pct('human', key)}")
    total = sum(counts[f"{c}:total"] for c in ("kb", "none", "human"))
    right = counts["kb:correct"] + counts["none:kept_out"] + counts["human:handed_off"]
    if total:
        ordered = sorted(latencies)
        p50 = ordered[len(ordered) // 2] * 1000
        click.echo(f"overall accuracy       {right}/{total} = {100 * right / total:.1f}%")
        # The four figures: a clarification is neither a right nor a wrong answer, and
        # gives an out-of-scope message no knowledge-base answer.
        kb_total, none_total = counts["kb:total"], counts["none:total"]
        no_answer = none_total - counts["none:answered"]
        click.echo(
            "targets                "
            f"correct {_share(counts['kb:correct'], kb_total)}, "
            f"wrong {_share(counts['kb:wrong'], kb_total)}, "
            f"out-of-scope without a KB answer {_share(no_answer, none_total)}, "
            f"handed off {_share(counts['human:handed_off'], counts['human:total'])}"
        )
        click.echo(
            f"dialog latency         p50 {p50:.1f} ms over {total} messages ({elapsed:.1f} s)"
        )


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"


@kb_cli.command("unanswered")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def kb_unanswered(days: int, limit: int) -> None:
    """List the questions the bot could not answer, most frequent first, for the KB team."""
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
