"""Demo data: the 安视科技 knowledge base, catalogue, ~30 devices and one approved installer.

Everything goes through the same import paths as real data (KB file, catalogue JSON, device CSV),
and every step is an upsert, so running the demo again changes nothing that matters: device
links stay the same. Device dates are relative to today so the mix of in- and out-of-warranty
devices holds whenever the demo is loaded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select

from .. import kb, timeutil
from ..extensions import db
from . import catalogue, devices, gs1
from .models import Installer

DATA = Path(__file__).resolve().parent.parent / "demo"
INSTALLER_PHONE = "13800000000"
INSTALLER_PASSWORD = "demo1234"
FONT = "STSong-Light"
DEALERS = (
    "杭州华东安防设备有限公司",
    "深圳智联安防科技",
    "安视科技天猫旗舰店",
    "北京京安工程技术有限公司",
    "成都蓉城监控批发部",
)
# GS1 company prefix for the demo (China's range is 690-699); engineering lines carry GTINs.
GTIN_PREFIX = "69234560"
GTIN_MODELS = ("AS-P4B", "AS-P8D", "AS-N8P", "AS-N16")
CATEGORY_COLOURS = {
    "camera": (46, 110, 200),
    "nvr": (60, 60, 70),
    "doorbell": (230, 140, 40),
    "lock": (150, 120, 90),
}


def run(echo: Callable[[str], Any] = print) -> None:
    """Load (or refresh) the demo data and commit; print how to try it."""
    data = json.loads((DATA / "catalog.json").read_text(encoding="utf-8"))
    written = _write_media(data)
    entries = kb.read_file(DATA / "kb.jsonl")
    kb_created, kb_updated = kb.upsert(entries)
    cat = catalogue.apply(catalogue.validate(data))
    db.session.flush()

    rows = devices.parse_csv(_devices_csv(data))
    result = devices.import_rows(rows)
    installer = _installer()
    db.session.flush()
    registered = _register_installations(installer, data)
    db.session.commit()

    echo(f"媒体文件 / media files: {written} written under {current_app.config['MEDIA_ROOT']}")
    echo(
        f"知识库 / knowledge base: {len(entries)} entries ({kb_created} new, {kb_updated} updated)"
    )
    echo(f"目录 / catalogue: {cat.series} series, {cat.models} models")
    echo(
        f"设备 / devices: {len(rows)} ({result.created} new, {result.updated} updated), "
        f"{registered} installation(s) registered"
    )
    echo(f"安装商 / installer: {INSTALLER_PHONE} / {INSTALLER_PASSWORD} (approved)")
    if _video_encoder() is None:
        echo(
            "未安装 imageio-ffmpeg，演示视频只生成了封面 / without imageio-ffmpeg (pip install "
            "'.[demo]') the demo videos have posters only."
        )
    for serial in _sample_serials(data):
        device = devices.by_serial(serial)
        if device is not None:
            echo(f"  {device.serial:<14} {device.model.code:<8} {devices.device_url(device)}")


def _models(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(s["category"], m) for s in data["series"] for m in s["models"]]


def _gtin(index: int) -> str:
    body = f"{GTIN_PREFIX}{index:04d}"
    return (body + str(gs1.check_digit(body))).zfill(14)


def _devices_csv(data: dict[str, Any]) -> str:
    """Thirty devices with dates spread over five years, as a device CSV."""
    today = timeutil.today()
    models = [m["code"] for _, m in _models(data)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "serial",
            "model",
            "gtin",
            "ship_date",
            "purchase_date",
            "dealer",
            "warranty_extension_months",
            "warranty_end_override",
        ]
    )
    for i in range(30):
        code = models[i % len(models)]
        ship = today - timedelta(days=45 + i * 67)
        serial = f"{code.removeprefix('AS-')}{ship:%y%m}{i + 1:04d}"
        gtin = _gtin(GTIN_MODELS.index(code) + 1) if code in GTIN_MODELS else ""
        purchase: date | None = None
        extension = 0
        override: date | None = None
        variant = i % 5
        if variant in (0, 3):
            purchase = ship + timedelta(days=21 + i)
        if variant == 3:
            extension = 12  # bought an extended warranty
        ship_text = ship.isoformat()
        if i == 29:
            ship_text = ""  # an old unit nobody recorded: warranty unknown
        if i == 12:
            override = today + timedelta(days=180)  # goodwill extension after a recall
        writer.writerow(
            [
                serial,
                code,
                gtin,
                ship_text,
                purchase.isoformat() if purchase else "",
                DEALERS[i % len(DEALERS)],
                extension,
                override.isoformat() if override else "",
            ]
        )
    return out.getvalue()


def _sample_serials(data: dict[str, Any]) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(_devices_csv(data))))
    return [rows[i]["serial"] for i in (0, 1, 2, 4, 12, 29)]


def _installer() -> Installer:
    installer = db.session.scalar(select(Installer).where(Installer.phone == INSTALLER_PHONE))
    if installer is None:
        installer = Installer(
            phone=INSTALLER_PHONE, name="王师傅", company="杭州华东安防设备有限公司"
        )
        db.session.add(installer)
    if not installer.check_password(INSTALLER_PASSWORD):
        installer.set_password(INSTALLER_PASSWORD)
    if installer.status != "approved":
        installer.status = "approved"
        installer.approved_at = datetime.now(UTC)
    return installer


def _register_installations(installer: Installer, data: dict[str, Any]) -> int:
    """The installer registers every fifth device (those without proof of purchase)."""
    count = 0
    for row in devices.parse_csv(_devices_csv(data)):
        line = row.line - 2
        if line % 5 != 2:
            continue
        device = devices.by_serial(row.serial)
        if device is None or device.ship_date is None or device.installed_on is not None:
            continue
        devices.register_installation(device, installer, device.ship_date + timedelta(days=20))
        count += 1
    return count


# --- media files ------------------------------------------------------------------------------


def _write_media(data: dict[str, Any]) -> int:
    """Create the manuals, photos, posters and firmware files the catalogue names, if missing."""
    root = Path(current_app.config["MEDIA_ROOT"])
    written = 0
    for category, model in _models(data):
        targets: list[tuple[str, Callable[[Path], None]]] = []
        if model.get("photo"):
            targets.append((model["photo"], lambda p, c=category: _photo(p, c)))
        for manual in model.get("manuals", []):
            targets.append((manual["file"], lambda p, m=model, x=manual: _manual_pdf(p, m, x)))
        for video in model.get("videos", []):
            if video.get("poster"):
                targets.append((video["poster"], lambda p, c=category: _poster(p, c)))
            if video.get("url") and _video_encoder() is not None:
                targets.append((video["url"], lambda p, c=category, v=video: _video(p, c, v)))
        for fw in model.get("firmware", []):
            targets.append((fw["url"], lambda p, m=model, f=fw: _firmware(p, m, f)))
        for relative, make in targets:
            path = root / relative
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            make(path)
            written += 1
    return written


def _photo(path: Path, category: str) -> None:
    """A flat product illustration: small enough to keep the device page light."""
    colour = CATEGORY_COLOURS[category]
    image = Image.new("RGB", (480, 360), (244, 246, 249))
    draw = ImageDraw.Draw(image)
    if category == "camera":
        draw.rounded_rectangle(
            (110, 110, 370, 250), radius=40, fill=(250, 250, 250), outline=colour, width=6
        )
        draw.ellipse((290, 140, 370, 220), fill=(30, 30, 40))
        draw.ellipse((312, 162, 348, 198), fill=colour)
        draw.rectangle((220, 250, 260, 300), fill=(200, 200, 205))
    elif category == "nvr":
        draw.rounded_rectangle((60, 140, 420, 230), radius=10, fill=colour)
        for x in range(90, 200, 22):
            draw.ellipse((x, 178, x + 10, 188), fill=(80, 220, 120))
        draw.rectangle((300, 170, 390, 196), fill=(90, 90, 100))
    elif category == "doorbell":
        draw.rounded_rectangle((180, 50, 300, 310), radius=50, fill=(40, 40, 48))
        draw.ellipse((210, 80, 270, 140), fill=(20, 20, 25), outline=colour, width=4)
        draw.ellipse((215, 220, 265, 270), fill=colour)
    else:
        draw.rounded_rectangle((170, 30, 310, 330), radius=24, fill=(45, 45, 50))
        draw.rectangle((195, 70, 285, 140), fill=(25, 25, 30))
        draw.rounded_rectangle((150, 170, 330, 200), radius=14, fill=colour)
        draw.ellipse((222, 240, 258, 276), fill=(90, 90, 100))
    image.save(path, optimize=True)


def _poster(path: Path, category: str) -> None:
    """A video poster frame: brand colour and a play symbol."""
    image = Image.new("RGB", (640, 360), CATEGORY_COLOURS[category])
    draw = ImageDraw.Draw(image)
    draw.ellipse((270, 130, 370, 230), fill=(255, 255, 255))
    draw.polygon([(305, 155), (305, 205), (348, 180)], fill=CATEGORY_COLOURS[category])
    image.save(path, optimize=True)


def _video_encoder() -> Any:
    """imageio-ffmpeg (the optional ``demo`` extra ships an ffmpeg binary), or None."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg


CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def _video(path: Path, category: str, video: dict[str, Any]) -> None:
    """An H.264 clip as long as the catalogue says: the product, the title, a progress bar."""
    title = video["title"]
    encoder = _video_encoder()
    font_path = next((f for f in CJK_FONTS if Path(f).exists()), None)
    font = ImageFont.truetype(font_path, 30) if font_path else None
    colour = CATEGORY_COLOURS[category]
    illustration = path.with_suffix(".frame.png")
    _photo(illustration, category)
    product = Image.open(illustration).convert("RGB").resize((400, 300))
    illustration.unlink()
    # A few frames a second keep the demo quick to generate and the files small.
    fps, seconds, size = 2, int(video.get("duration_s") or 30), (640, 360)
    writer = encoder.write_frames(
        str(path),
        size,
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=8,
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)
    total = fps * seconds
    for i in range(total):
        frame = Image.new("RGB", size, (244, 246, 249))
        # A slow pan keeps it looking like footage rather than a still.
        frame.paste(product, (120 - 40 + int(80 * i / total), 10))
        draw = ImageDraw.Draw(frame)
        if font is not None:
            draw.rectangle((0, 300, 640, 344), fill=(255, 255, 255))
            draw.text((20, 304), title, font=font, fill=(30, 30, 40))
        draw.rectangle((0, 344, 640, 360), fill=(220, 223, 228))
        draw.rectangle((0, 344, int(640 * (i + 1) / total), 360), fill=colour)
        writer.send(frame.tobytes())
    writer.close()


def _firmware(path: Path, model: dict[str, Any], fw: dict[str, Any]) -> None:
    """Deterministic stand-in firmware bytes, so the published SHA-256 is stable."""
    seed = f"{model['code']}:{fw['version']}".encode()
    header = b"ANSHI-FW\x00" + seed.ljust(55, b"\x00")
    body = b"".join(hashlib.sha256(seed + n.to_bytes(4, "big")).digest() for n in range(1024))
    path.write_bytes(header + body)


def _manual_pdf(path: Path, model: dict[str, Any], manual: dict[str, Any]) -> None:
    """A short but real manual: cover line, contents and steps, in Chinese with English titles."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    # invariant=1: no timestamps or random ids, so the same manual is byte-for-byte the same.
    canvas = Canvas(str(path), pagesize=A4, invariant=1)
    canvas.setTitle(f"{model['code']} {manual['title_en']}")
    canvas.setAuthor("安视科技 Anshi Technology")
    y = A4[1] - 30 * mm
    canvas.setFont(FONT, 20)
    canvas.drawString(20 * mm, y, f"{model['name']}")
    y -= 10 * mm
    canvas.setFont(FONT, 14)
    canvas.drawString(20 * mm, y, f"{manual['title']} / {manual['title_en']}")
    y -= 6 * mm
    canvas.setFont(FONT, 10)
    canvas.drawString(20 * mm, y, f"{model['code']} · {model['name_en']} · 安视科技")
    y -= 14 * mm
    for heading, lines in _manual_sections(model, manual):
        canvas.setFont(FONT, 13)
        canvas.drawString(20 * mm, y, heading)
        y -= 8 * mm
        canvas.setFont(FONT, 10.5)
        for line in lines:
            canvas.drawString(25 * mm, y, line)
            y -= 6.5 * mm
        y -= 4 * mm
    canvas.setFont(FONT, 8)
    canvas.drawString(20 * mm, 15 * mm, "客服热线 400-800-1234 · 微信公众号「安视科技服务」")
    canvas.save()


def _manual_sections(model: dict[str, Any], manual: dict[str, Any]) -> list[tuple[str, list[str]]]:
    summary = model.get("summary") or ""
    if manual["audience"] == "installer":
        return [
            (
                "一、安装前准备",
                [
                    "核对包装清单：主机、支架、螺丝包、防水组件、定位贴纸。",
                    "确认供电方式与线材：PoE 供电请使用超五类及以上纯铜网线。",
                    "规划安装位置与走线路径，预留检修空间。",
                ],
            ),
            (
                "二、接线说明",
                [
                    "网线两端按 T568B 线序压接水晶头，用测线仪确认 8 芯全通。",
                    "单根网线长度不超过 100 米；室外接头放入防水盒并缠防水胶布。",
                    "接入录像机 PoE 口后，设备指示灯常亮即为供电正常。",
                ],
            ),
            (
                "三、激活与登记",
                [
                    "使用 SADP 工具批量激活，设置 8 位以上强密码。",
                    "安装完成后扫描机身二维码，在设备页「登记安装」填写安装日期。",
                    "无购买凭证时，保修期从安装登记日期开始计算。",
                ],
            ),
        ]
    if "quick" in manual["file"]:
        return [
            ("产品简介", [summary]),
            (
                "快速上手",
                [
                    "1. 下载并登录「安视云」App。",
                    "2. 设备通电，等待语音提示「等待配网」。",
                    "3. 在 App 中点「+」扫描机身二维码，按提示完成添加。",
                ],
            ),
            ("指示灯说明", ["蓝灯常亮：运行正常；红灯闪烁：未联网；红灯常亮：设备故障。"]),
        ]
    return [
        ("产品简介", [summary]),
        (
            "日常使用",
            [
                "实时预览、回放与报警推送均可在「安视云」App 中查看。",
                "可在「设备设置」中调整画质、侦测区域与通知时段。",
            ],
        ),
        (
            "维护与保养",
            [
                "请定期用软布清洁镜头或面板，勿使用腐蚀性清洁剂。",
                "固件有更新时请在 App 中升级，升级期间保持通电。",
            ],
        ),
        ("保修说明", ["保修期自购买凭证日期起算；详情请扫描机身二维码查看本机保修状态。"]),
    ]
