"""QR codes and label sheets: every code on a printed sheet scans to its device's link."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import pypdfium2
import zxingcpp
from flask.testing import FlaskCliRunner
from PIL import Image

from kefu.catalog import devices, labels, qr
from kefu.catalog.models import Device

MakeDevice = Callable[..., Device]
DPI = 300


def _decode_pdf(path: Path) -> list[zxingcpp.Barcode]:
    found: list[zxingcpp.Barcode] = []
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        for page in pdf:
            image = page.render(scale=DPI / 72).to_pil()
            found.extend(zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode))
    finally:
        pdf.close()
    return found


def test_every_code_on_the_sheet_decodes_to_its_device(
    runner: FlaskCliRunner, make_device: MakeDevice, tmp_path: Path
) -> None:
    # 40 devices: a full page of 32 and a second page.
    made = [make_device(f"C3H2401{i:04d}") for i in range(40)]
    out = tmp_path / "labels.pdf"
    result = runner.invoke(args=["qr", "labels", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "40" in result.output and "2 A4 page(s)" in result.output
    codes = _decode_pdf(out)
    assert sorted(c.text for c in codes) == sorted(devices.device_url(d) for d in made)
    assert {c.ec_level for c in codes} <= {"M", "Q", "H"}
    # Module size: the symbol's width (finder corner to corner) over its modules, in mm.
    for code in codes:
        width_px = code.position.top_right.x - code.position.top_left.x
        modules = len(qr.matrix(code.text))
        assert width_px / modules / DPI * 25.4 >= 0.4 - 0.02


def test_named_serials_only_and_unknown_serial_refused(
    runner: FlaskCliRunner, make_device: MakeDevice, tmp_path: Path
) -> None:
    first = make_device("C3H24010001")
    make_device("C3H24010002")
    out = tmp_path / "one.pdf"
    result = runner.invoke(args=["qr", "labels", "--out", str(out), "c3h24010001"])
    assert result.exit_code == 0, result.output
    assert [c.text for c in _decode_pdf(out)] == [devices.device_url(first)]
    result = runner.invoke(args=["qr", "labels", "--out", str(tmp_path / "x.pdf"), "NOPE0000"])
    assert result.exit_code == 1
    assert "NOPE0000" in result.output
    assert not (tmp_path / "x.pdf").exists()


def test_labels_print_model_and_serial(make_device: MakeDevice, tmp_path: Path) -> None:
    device = make_device("C3H24010001")
    out = tmp_path / "labels.pdf"
    steps: list[tuple[int, int]] = []
    labels.render([device], out, progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 1)]
    pdf = pypdfium2.PdfDocument(str(out))
    text = pdf[0].get_textpage().get_text_range()
    pdf.close()
    assert "AS-C3H" in text and "C3H24010001" in text


def test_png_and_svg_of_one_device(
    runner: FlaskCliRunner, make_device: MakeDevice, tmp_path: Path
) -> None:
    device = make_device()
    url = devices.device_url(device)
    result = runner.invoke(args=["qr", "png", device.serial, "--out", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    image = Image.open(io.BytesIO((tmp_path / "a.png").read_bytes()))
    (code,) = zxingcpp.read_barcodes(image)
    assert code.text == url and code.ec_level == "M"
    # Quiet zone: the first 4 modules (10 px each) of every edge are white.
    grey = image.convert("L")
    assert grey.crop((0, 0, grey.width, 40)).getextrema() == (255, 255)
    assert grey.crop((0, 0, 40, grey.height)).getextrema() == (255, 255)

    result = runner.invoke(args=["qr", "svg", device.serial, "--out", str(tmp_path / "a.svg")])
    assert result.exit_code == 0, result.output
    root = ElementTree.fromstring((tmp_path / "a.svg").read_text(encoding="utf-8"))
    assert root.tag.endswith("svg") and root.get("width", "").endswith("mm")

    result = runner.invoke(args=["qr", "png", "NOPE0000", "--out", str(tmp_path / "b.png")])
    assert result.exit_code == 1 and "NOPE0000" in result.output
