"""Benchmark: QR labels per second rendered into an A4 PDF sheet (target: at least 100/s).

    .venv/bin/python benchmarks/labels.py [--count 1000]

Uses a scratch SQLite database and a temporary folder; nothing else is touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    """Create ``--count`` devices, render their label sheet, print labels per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import insert

    from kefu import create_app
    from kefu.catalog import devices, labels
    from kefu.catalog.models import Device, ProductModel, Series, new_token
    from kefu.extensions import db
    from kefu.models import utcnow

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(tmp, "bench.sqlite3"),
                "PUBLIC_BASE_URL": "https://kefu.example.com",
                "MEDIA_ROOT": os.path.join(tmp, "media"),
            }
        )
        with app.app_context():
            upgrade()
            series = Series(
                code="P-Series",
                name="P 系列",
                name_en="P Series",
                category="camera",
                warranty_months=36,
            )
            model = ProductModel(
                code="AS-P4B", name="P4B 400万 PoE 枪型摄像机", name_en="P4B bullet", series=series
            )
            db.session.add(model)
            db.session.flush()
            db.session.execute(
                insert(Device),
                [
                    {
                        "serial": f"P4B2401{i:06d}",
                        "model_id": model.id,
                        "token": new_token(),
                        "created_at": utcnow(),
                        "warranty_extension_months": 0,
                    }
                    for i in range(args.count)
                ],
            )
            db.session.commit()
            chosen = devices.all_for_labels()
            out = Path(tmp) / "labels.pdf"
            started = time.perf_counter()
            result = labels.render(chosen, out)
            elapsed = time.perf_counter() - started
            size = out.stat().st_size
    rate = result.labels / elapsed
    print(
        f"{result.labels} labels on {result.pages} pages in {elapsed:.2f} s: "
        f"{rate:.0f} labels/s (target >= 100), PDF {size / 1024:.0f} KB"
    )
    sys.exit(0 if rate >= 100 else 1)


if __name__ == "__main__":
    main()
