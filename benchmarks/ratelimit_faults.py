"""Rate limits with Redis up, refusing connections and black-holed (accepts, never answers).

Runs 200 public warranty lookups per case through the app (test client, PostgreSQL) with a limit
of 150/minute and prints the time they took and how many were allowed: the limit must hold
(150 allowed, 50 refused) in every case, and a dead Redis must not slow pages down.

    .venv/bin/python benchmarks/ratelimit_faults.py [--pg postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import uuid
from pathlib import Path

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from kefu import create_app  # noqa: E402
from kefu.extensions import db  # noqa: E402

LOOKUPS = 200
LIMIT = 150


def run_case(label: str, redis_url: str, database_url: str) -> None:
    """Time LOOKUPS lookups from one client against a LIMIT/minute allowance."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "WTF_CSRF_ENABLED": False,
            "WARRANTY_LOOKUP_LIMIT": f"{LIMIT}/minute",
        }
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"192.0.2.{len(label)}"
    started = time.perf_counter()
    statuses = [
        client.post("/warranty", data={"serial": f"AS2030X{i:06d}"}).status_code
        for i in range(LOOKUPS)
    ]
    elapsed = time.perf_counter() - started
    print(
        f"{label:18} {LOOKUPS} lookups in {elapsed:.2f} s ({elapsed / LOOKUPS * 1000:.1f} ms each);"
        f" allowed {statuses.count(200)}, refused {statuses.count(429)}"
    )
    with app.app_context():
        db.engine.dispose()
    client_redis = app.extensions.pop("kefu.redis", None)
    if client_redis is not None:
        client_redis.close()


def main() -> None:
    """Create a scratch database, run the three cases, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2")
    args = parser.parse_args()
    name = f"kefu_bench_rl_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    database_url += "/" + name
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        run_case("redis up", args.redis, database_url)
        run_case("redis refused", "redis://127.0.0.1:9/0", database_url)
        run_case("redis black-holed", f"redis://127.0.0.1:{hole.getsockname()[1]}/0", database_url)
    finally:
        hole.close()
        with redis.Redis.from_url(args.redis) as conn:
            # Only the limiter's counters (flask-limiter's key prefix): the database may be shared.
            for key in conn.scan_iter("LIMITS*"):
                conn.delete(key)
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
