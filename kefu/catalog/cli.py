"""Command-line tools: ``devices``, ``catalog``, ``qr`` and ``demo``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from ..extensions import db
from ..imports import ImportError_, fail
from . import catalogue, devices, labels, qr
from .models import Device

devices_cli = AppGroup("devices", help="Devices: import and export CSV.")
catalog_cli = AppGroup("catalog", help="Catalogue: import series, models, manuals, firmware.")
qr_cli = AppGroup("qr", help="QR codes: label sheets, single codes, revocation.")

# Below this many rows a progress bar is noise.
PROGRESS_MIN = 2000


def _device_or_exit(serial: str) -> Device:
    device = devices.by_serial(serial)
    if device is None:
        click.echo(f"找不到序列号 {serial} / no device with serial {serial}", err=True)
        sys.exit(1)
    return device


@devices_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def devices_import(path: Path) -> None:
    """Import (upsert by serial) a device CSV: serial, model, optional columns; all or nothing."""
    started = time.perf_counter()
    try:
        rows = devices.read_file(path)
    except ImportError_ as exc:
        fail(exc.errors, "设备")
    if len(rows) >= PROGRESS_MIN:
        with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
            result = devices.import_rows(rows, progress=lambda done, _: bar.update(done - bar.pos))
    else:
        result = devices.import_rows(rows)
    db.session.commit()
    click.echo(
        f"已导入 {len(rows)} 台设备 / imported {len(rows)} devices: {result.created} new, "
        f"{result.updated} updated, {result.unchanged} unchanged "
        f"({time.perf_counter() - started:.1f} s)."
    )


@devices_cli.command("export")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None)
def devices_export(out: Path | None) -> None:
    """Write every device as CSV (serial, model, url, dates, warranty) to --out or stdout."""
    if out is None:
        devices.export_csv(sys.stdout)
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        count = devices.export_csv(handle)
    click.echo(f"已导出 {count} 台设备 / exported {count} devices to {out}", err=True)


@devices_cli.command("installations")
def devices_installations() -> None:
    """List installation dates waiting for staff: outside the window after shipping."""
    flagged = devices.flagged_installations()
    if not flagged:
        click.echo("没有待审核的安装登记 / no flagged installations.")
        return
    for device in flagged:
        installer = device.installer.phone if device.installer else "-"
        ship = device.ship_date.isoformat() if device.ship_date else "-"
        installed = device.installed_on.isoformat() if device.installed_on else "-"
        click.echo(
            f"{device.serial}\t{device.model.code}\tship {ship}\tinstalled {installed}\t{installer}"
        )


@devices_cli.command("accept-installation")
@click.argument("serial")
@click.option("--note", required=True, help="Why the date is accepted (kept with the record).")
def devices_accept_installation(serial: str, note: str) -> None:
    """Accept a flagged installation date as the warranty start of SERIAL."""
    device = _device_or_exit(serial)
    try:
        devices.accept_installation(device, note)
    except devices.DeviceError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"{device.serial}: 安装日期已采纳 / installation date accepted.")


@catalog_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def catalog_import(path: Path) -> None:
    """Import (upsert) a catalogue JSON file (docs/catalogue-format.md); all or nothing."""
    try:
        data = catalogue.read_file(path)
    except ImportError_ as exc:
        fail(exc.errors, "内容")
    result = catalogue.apply(data)
    db.session.commit()
    click.echo(
        f"已导入目录 / catalogue imported: {result.series} series, {result.models} models, "
        f"{result.manuals} manuals, {result.videos} videos, {result.firmware} firmware releases."
    )


@qr_cli.command("labels")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.argument("serials", nargs=-1)
def qr_labels(out: Path, serials: tuple[str, ...]) -> None:
    """Print an A4 PDF of QR labels for the given serials (all devices when none are named)."""
    if serials:
        chosen, missing = devices.by_serials(serials)
        if missing:
            for serial in missing:
                click.echo(f"找不到序列号 / no device with serial: {serial}", err=True)
            click.echo("未生成标签 / no labels written.", err=True)
            sys.exit(1)
    else:
        chosen = devices.all_for_labels()
    if not chosen:
        click.echo("没有设备，先导入设备 / no devices: import some first.", err=True)
        sys.exit(1)
    started = time.perf_counter()
    try:
        with click.progressbar(length=len(chosen), label="labels", file=sys.stderr) as bar:
            result = labels.render(chosen, out, progress=lambda done, _: bar.update(done - bar.pos))
    except labels.LabelError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    elapsed = time.perf_counter() - started
    click.echo(
        f"已生成 {result.labels} 张标签，共 {result.pages} 页 / wrote {result.labels} labels "
        f"on {result.pages} A4 page(s) to {out} ({elapsed:.1f} s)."
    )


@qr_cli.command("png")
@click.argument("serial")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--box-size", default=10, show_default=True, help="Pixels per module.")
def qr_png(serial: str, out: Path, box_size: int) -> None:
    """Write one device's QR code as a PNG."""
    device = _device_or_exit(serial)
    out.write_bytes(qr.png(devices.device_url(device), box_size=box_size))
    click.echo(f"{device.serial} -> {out} ({devices.device_url(device)})")


@qr_cli.command("svg")
@click.argument("serial")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def qr_svg(serial: str, out: Path) -> None:
    """Write one device's QR code as an SVG."""
    device = _device_or_exit(serial)
    out.write_text(qr.svg(devices.device_url(device)), encoding="utf-8")
    click.echo(f"{device.serial} -> {out} ({devices.device_url(device)})")


@qr_cli.command("revoke")
@click.argument("serial")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def qr_revoke(serial: str, yes: bool) -> None:
    """Give a device a new link; its old QR code stops working (print a new label)."""
    device = _device_or_exit(serial)
    if not yes:
        click.confirm(
            f"作废 {device.serial} 的旧二维码？/ Revoke the current QR code of {device.serial}?",
            abort=True,
        )
    devices.revoke(device)
    db.session.commit()
    click.echo(
        f"已作废旧二维码 / old code revoked. 新链接 / new link: {devices.device_url(device)}"
    )


@click.command("demo")
def demo_command() -> None:
    """Load the demo knowledge base, catalogue, devices and installer (safe to run again)."""
    from . import demo

    demo.run(echo=click.echo)
    from ..tickets import demo as ticket_demo

    ticket_demo.run(echo=click.echo)
    from .. import staff

    staff.demo(echo=click.echo)
    # The first chat message should not wait for the index: build and save it now.
    from .. import kb
    from ..cli import IndexProgress

    index = kb.load_or_build_index(kb.current_revision(), progress=IndexProgress())
    click.echo(f"知识库索引就绪 / knowledge-base index ready: {len(index)} entries")


def init_app(app: Flask) -> None:
    """Register the catalogue command groups on ``app``."""
    app.cli.add_command(devices_cli)
    app.cli.add_command(catalog_cli)
    app.cli.add_command(qr_cli)
    app.cli.add_command(demo_command)
