"""End-to-end reply time of POST /wechat: signature, decryption, dedupe, dialog, reply, encryption.

Runs against a scratch PostgreSQL database (default) or SQLite, with the knowledge base and the
messages in ../shared/eval (or given paths), each message a signed and encrypted delivery from a
new user, the way WeChat sends it. WeChat gives up on a reply after 5 s.

    .venv/bin/python benchmarks/webhook_latency.py [--sqlite] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu import create_app  # noqa: E402
from kefu.extensions import db  # noqa: E402
from tests.conftest import FakeWeChat, make_config  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    """Measure and print reply-time percentiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=ROOT.parent / "shared/eval/kb_dev.jsonl")
    parser.add_argument(
        "--questions", type=Path, default=ROOT.parent / "shared/eval/questions_dev.jsonl"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sqlite", action="store_true", help="use a scratch SQLite file instead")
    args = parser.parse_args()

    name = f"kefu_bench_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:////tmp/{name}.sqlite3"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        app = create_app(make_config(url, REDIS_URL=""))
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
        runner = app.test_cli_runner()
        result = runner.invoke(args=["kb", "import", str(args.kb)])
        print(result.output.strip())
        messages = [
            json.loads(line)["text"]
            for line in args.questions.read_text("utf-8").splitlines()
            if line.strip()
        ]
        wechat = FakeWeChat(app.test_client(), safe_mode=True)
        wechat.text("warmup", "你好")  # first message builds the index and loads jieba
        timings: list[float] = []
        total = len(messages) * args.rounds
        for round_no in range(args.rounds):
            for i, message in enumerate(messages):
                started = time.perf_counter()
                response = wechat.text(f"bench-{round_no}-{i}", message)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
                if len(timings) % 100 == 0:
                    print(f"\r{len(timings)}/{total} deliveries", end="", file=sys.stderr)
        print(file=sys.stderr)
        timings.sort()
        q = statistics.quantiles(timings, n=100)
        print(
            f"{'SQLite' if args.sqlite else 'PostgreSQL'}: {len(timings)} encrypted deliveries, "
            f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms, max {timings[-1]:.1f} ms"
        )
        with app.app_context():
            db.engine.dispose()
    finally:
        if not args.sqlite:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
