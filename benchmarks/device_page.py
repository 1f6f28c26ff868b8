"""Benchmark: device page server time with 100k devices in the database (target: p50 <= 10 ms).

    .venv/bin/python benchmarks/device_page.py [--devices 100000] [--requests 500] [--sqlite]

By default a scratch PostgreSQL database is created (KEFU_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards; --sqlite uses a temporary
SQLite file instead. The demo catalogue is loaded, the devices are bulk-inserted, and
``GET /d/<token>`` is timed through Flask's test client (server time, no network).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_ADMIN_URL = os.environ.get("KEFU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CHUNK = 5000


@contextmanager
def scratch_database(use_sqlite: bool, tmp: str) -> Iterator[str]:
    """A database URL that exists only for the run."""
    if use_sqlite:
        yield "sqlite:///" + os.path.join(tmp, "bench.sqlite3")
        return
    import psycopg

    name = f"kefu_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Fill the database, then time the device page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import func, insert, select

    from kefu import create_app
    from kefu.catalog import demo
    from kefu.catalog.models import Device, ProductModel, new_token
    from kefu.extensions import db
    from kefu.models import utcnow

    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.sqlite, tmp) as url:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "bench",
                "SQLALCHEMY_DATABASE_URI": url,
                "PUBLIC_BASE_URL": "https://kefu.example.com",
                "MEDIA_ROOT": os.path.join(tmp, "media"),
                "RATELIMIT_ENABLED": False,
            }
        )
        with app.app_context():
            upgrade()
            demo.run(echo=lambda _: None)
            model_ids = list(db.session.scalars(select(ProductModel.id)))
            started = time.perf_counter()
            rng = random.Random(7)
            existing = db.session.scalar(select(func.count(Device.id))) or 0
            for start in range(0, args.devices - existing, CHUNK):
                rows = [
                    {
                        "serial": f"BENCH{start + i:08d}",
                        "model_id": rng.choice(model_ids),
                        "ship_date": None,
                        "token": new_token(),
                        "created_at": utcnow(),
                        "warranty_extension_months": 0,
                    }
                    for i in range(min(CHUNK, args.devices - existing - start))
                ]
                # executemany in chunks: 100k rows in seconds, not minutes.
                db.session.execute(insert(Device), rows)
            db.session.commit()
            total = db.session.scalar(select(func.count(Device.id)))
            print(
                f"{total} devices in the database ({time.perf_counter() - started:.1f} s to insert)"
            )
            tokens = list(db.session.scalars(select(Device.token)))
            db.session.remove()

        client = app.test_client()
        sample = random.Random(11).sample(tokens, min(args.requests, len(tokens)))
        for token in sample[:20]:  # warm-up: templates compiled, connections pooled
            client.get(f"/d/{token}")
        times: list[float] = []
        statuses: dict[int, int] = {}
        for token in sample:
            t0 = time.perf_counter()
            response = client.get(f"/d/{token}")
            times.append((time.perf_counter() - t0) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        with app.app_context():
            db.engine.dispose()

    if statuses.get(200, 0) != len(sample):
        print(f"device page not answering 200 for every device: {statuses}")
        sys.exit(2)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(len(times) * 0.95) - 1]
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"GET /d/<token> on {backend}: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(times)} "
        f"requests (target p50 <= 10 ms)"
    )
    sys.exit(0 if p50 <= 10 else 1)


if __name__ == "__main__":
    main()
