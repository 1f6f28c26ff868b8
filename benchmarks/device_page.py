"""Benchmark: device pages with 100k devices in the database (targets: p50 <= 4 ms server time,
>= 600 pages/s over HTTP).

    .venv/bin/python benchmarks/device_page.py [--devices 100000] [--requests 500] [--sqlite]
        [--http-seconds 10] [--workers 2]

By default a scratch PostgreSQL database is created (KEFU_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards; --sqlite uses a temporary
SQLite file instead. The demo catalogue is loaded, the devices are bulk-inserted, and
``GET /d/<token>`` of random devices is timed through Flask's test client (server time, no
network), then served by gunicorn (2 sync workers) and loaded with wrk over HTTP, each request a
random device (``--http-seconds 0`` skips that part). Also printed: the queries one page costs.
"""

from __future__ import annotations

import argparse
import os
import random
import re
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
    parser.add_argument("--http-seconds", type=int, default=10, help="wrk run over HTTP (0: none)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import event, func, insert, select

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
            statements: list[str] = []
            engine = db.engine

        def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        client.get(f"/d/{sample[-1]}")
        event.remove(engine, "before_cursor_execute", count)
        with app.app_context():
            db.engine.dispose()
        pages_per_s = http_run(url, tokens, args, tmp) if args.http_seconds else None

    if statuses.get(200, 0) != len(sample):
        print(f"device page not answering 200 for every device: {statuses}")
        sys.exit(2)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(len(times) * 0.95) - 1]
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"GET /d/<token> on {backend}: p50 {p50:.1f} ms, p95 {p95:.1f} ms server time over "
        f"{len(times)} requests (target p50 <= 4 ms); {len(statements)} queries per page"
    )
    met = p50 <= 4
    if pages_per_s is not None:
        print(
            f"over HTTP (gunicorn, {args.workers} workers, wrk): {pages_per_s:.0f} pages/s "
            "(target >= 600)"
        )
        met = met and pages_per_s >= 600
    sys.exit(0 if met else 1)


def http_run(url: str, tokens: list[str], args: argparse.Namespace, tmp: str) -> float:
    """Pages per second over HTTP: gunicorn serving the scratch database, wrk asking."""
    import subprocess

    from benchmarks.loadgen import Server

    paths = Path(tmp) / "paths.txt"
    rng = random.Random(5)
    paths.write_text("".join(f"/d/{t}\n" for t in rng.sample(tokens, min(20_000, len(tokens)))))
    script = Path(tmp) / "pages.lua"
    script.write_text(
        "local paths = {}\n"
        f"for line in io.lines('{paths}') do table.insert(paths, line) end\n"
        "math.randomseed(os.time())\n"
        "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
    )
    env = {
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "SECRET_KEY": "bench",
        "PUBLIC_BASE_URL": "https://kefu.example.com",
        "MEDIA_ROOT": os.path.join(tmp, "media"),
        "REDIS_URL": "",
    }
    server = Server("wsgi:app", 8614, env, args.workers)
    try:
        server.wait()
        cpu = server.cpu_seconds()
        out = subprocess.run(
            ["wrk", "-t2", "-c8", f"-d{args.http_seconds}s", "-s", str(script), server.url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = server.cpu_seconds() - cpu
    finally:
        server.stop()
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    print(f"worker CPU per page over HTTP: {cpu * 1000 / max(1, done):.1f} ms")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        print(f"wrk: {non_2xx.group(1)} responses were not 200")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
