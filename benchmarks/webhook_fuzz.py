"""Fuzz POST /wechat with signed random and mutated bodies: count 5xx answers and the slowest one.

Every delivery carries a valid, fresh signature (so the body is really parsed, not refused at
the door); a share is encrypted the way WeChat does it, so mutated plaintext also reaches the
parser through decryption. Bodies start from real message and event shapes and hostile ones
(deep nesting, entities, DTDs, NUL bytes, 900 KB texts), then are mutated at random: bytes
flipped, spans cut, duplicated or shuffled, tags renamed, values replaced. Runs against a
scratch PostgreSQL database (default) or SQLite, with the test knowledge base loaded.

    .venv/bin/python benchmarks/webhook_fuzz.py [--count 10000] [--seed 1] [--sqlite] [--redis URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu import create_app  # noqa: E402
from kefu.extensions import db  # noqa: E402
from tests.conftest import FakeWeChat, make_config  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_SECONDS = 2.0

WORDS = ["摄像头离线怎么办", "转人工", "画面是倒的", "你好", "1", "0", "录像机硬盘", "]]>", "&amp;"]
EVENTS = [
    "subscribe",
    "unsubscribe",
    "SCAN",
    "CLICK",
    "VIEW",
    "LOCATION",
    "scancode_waitmsg",
    "scancode_push",
    "kf_close_session",
    "subscribe_msg_popup_event",
    "ENTER",
    "future_event",
]
TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event"]


def seeds(rng: random.Random, wechat: FakeWeChat) -> list[str]:
    """Well-formed starting points: every message kind and a few events."""
    openid = f"o_fuzz{rng.randrange(50)}"
    msg_id = rng.randrange(1, 10**15)
    found: list[str] = [
        wechat.xml(openid, "text", {"Content": rng.choice(WORDS)}, msg_id),
        wechat.xml(openid, "voice", {"MediaId": "m", "Recognition": rng.choice(WORDS)}, msg_id),
        wechat.xml(openid, "image", {"PicUrl": "http://x/1.jpg", "MediaId": "m"}, msg_id),
        wechat.xml(openid, "location", {"Location_X": "1", "Label": "上海"}, msg_id),
        wechat.xml(openid, "link", {"Title": "t", "Url": "http://x"}, msg_id),
        wechat.xml(openid, "shortvideo", {"MediaId": "m"}, msg_id),
    ]
    for event in rng.sample(EVENTS, 3):
        key = rng.choice(["", "qrscene_s1", "MENU_HUMAN", "K" * 128, "http://x/" + "a" * 1000])
        found.append(wechat.xml(openid, "event", {"Event": event, "EventKey": key}, None))
    return found


def hostile(rng: random.Random) -> str:
    """A body built to break parsers."""
    depth = rng.choice([100, 1000, 5000])
    kind = rng.randrange(6)
    if kind == 0:
        return "<xml>" + "<a>" * depth + "</a>" * depth + "</xml>"
    if kind == 1:
        lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 8))
        return f'<!DOCTYPE x [<!ENTITY l0 "lol">{lol}]><xml><Content>&l7;</Content></xml>'
    if kind == 2:
        return '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>'
    if kind == 3:
        return (
            "<xml><FromUserName>o</FromUserName><MsgType>text</MsgType><Content>"
            + "摄像头" * rng.choice([1000, 100_000, 300_000])
            + "</Content></xml>"
        )
    if kind == 4:
        return "<xml><FromUserName>o\x00</FromUserName><MsgType>text\x00</MsgType></xml>"
    return "<xml>" + "".join(f"<{rng.choice(TAGS)}>{rng.random()}</x>" for _ in range(50))


def mutate(rng: random.Random, body: str) -> bytes:
    """One to four random edits of ``body``, as bytes."""
    data = bytearray(body.encode("utf-8", "surrogatepass"))
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        op = rng.randrange(8)
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 64))
        if op == 0:
            data[i] = rng.randrange(256)
        elif op == 1:
            del data[i:j]
        elif op == 2:
            data[i:i] = data[i:j] * rng.randint(1, 20)
        elif op == 3:
            data[i:i] = rng.choice([b"\x00", b"<", b">", b"]]>", b"&", b"<!--", b"<![CDATA["])
        elif op == 4:
            data[i:i] = rng.choice(WORDS).encode() * rng.randint(1, 50)
        elif op == 5:
            data = data.replace(rng.choice(TAGS).encode(), rng.choice(TAGS).encode(), 1)
        elif op == 6:
            data = data[:i]
        else:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def body_for(rng: random.Random, wechat: FakeWeChat) -> bytes:
    """One fuzzed body: mostly mutated real shapes, some hostile, some intact."""
    roll = rng.random()
    if roll < 0.15:
        return hostile(rng).encode("utf-8", "surrogatepass")
    body = rng.choice(seeds(rng, wechat))
    if roll < 0.25:
        return body.encode()
    return mutate(rng, body)


def main() -> None:
    """Run the fuzz deliveries and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sqlite", action="store_true", help="use a scratch SQLite file instead")
    parser.add_argument("--redis", default="", help="REDIS_URL for nonces (default: database)")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    name = f"kefu_fuzz_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:////tmp/{name}.sqlite3"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    app = None
    try:
        # TESTING off: an exception becomes a 500 here, as it would in production.
        app = create_app(make_config(url, REDIS_URL=args.redis, TESTING=False))
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
        result = app.test_cli_runner().invoke(
            args=["kb", "import", str(ROOT / "tests/data/kb_test.jsonl")]
        )
        print(result.output.strip())
        client = app.test_client()
        plain = FakeWeChat(client)
        encrypted = FakeWeChat(client, safe_mode=True)
        # As a worker does at start (gunicorn's post_worker_init): load jieba and the index.
        plain.text("o_warmup", "摄像头离线怎么办")
        statuses: Counter[int] = Counter()
        timings: list[float] = []
        slow: list[tuple[float, int, bytes]] = []
        failures: list[str] = []
        for n in range(args.count):
            body = body_for(rng, plain)
            # About a third go encrypted: the mutated plaintext is what decryption yields.
            sender = encrypted if rng.random() < 0.33 else plain
            payload: str | bytes = body
            if sender is encrypted:
                payload = body.decode("utf-8", "replace")
            started = time.perf_counter()
            try:
                status = sender.post(payload).status_code
            except Exception as exc:  # an exception that escaped the app counts as a 5xx
                status = 599
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
            elapsed = time.perf_counter() - started
            statuses[status] += 1
            timings.append(elapsed)
            slow = sorted([*slow, (elapsed, n, body[:60])], reverse=True)[:5]
            if (n + 1) % 500 == 0:
                print(f"\r{n + 1}/{args.count} deliveries", end="", file=sys.stderr)
        print(file=sys.stderr)
        five_xx = sum(c for s, c in statuses.items() if s >= 500)
        over = sum(1 for t in timings if t > TARGET_SECONDS)
        q = statistics.quantiles(timings, n=100)
        print(
            f"{'SQLite' if args.sqlite else 'PostgreSQL'}, nonces in "
            f"{'Redis' if args.redis else 'the database'}: {args.count} signed fuzzed bodies "
            f"(seed {args.seed})"
        )
        print("status codes:", dict(sorted(statuses.items())))
        print(f"5xx: {five_xx}   over {TARGET_SECONDS:.0f} s: {over}")
        print(
            f"time per delivery: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
            f"max {slow[0][0] * 1000:.1f} ms"
        )
        for elapsed, n, start in slow:
            print(f"   {elapsed * 1000:7.1f} ms  delivery {n}: {start!r}")
        for failure in failures[:10]:
            print("  ", failure)
        if five_xx or over:
            sys.exit(1)
    finally:
        if not args.sqlite:
            if app is not None:
                with app.app_context():
                    db.engine.dispose()
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
