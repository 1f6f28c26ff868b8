"""Scripted faults against kefu under gunicorn: what the user got, how long, and what was lost.

kefu runs with 2 sync workers in safe mode, its PostgreSQL and Redis reached through loopback
proxies that can refuse or black-hole connections, and a fake WeChat API that can hang. Each
scenario sends signed, encrypted messages at a steady rate through the fault and after it,
then waits for kefu to recover by itself (messages kept in the spool are handled when the
database answers again) and counts, in the database, which messages were processed.

    .venv/bin/python benchmarks/faults.py [--seconds 8] [--rate 10] [--kb-size 100000]
    .venv/bin/python benchmarks/faults.py --only pg_refused,worker_killed

Scenarios: pg_refused, pg_blackholed, redis_down, wechat_api_hanging, worker_killed (mid repair
form), restart_100k (graceful restart with a 100k-entry knowledge base, under load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import loadgen  # noqa: E402
from benchmarks.webhook_throughput import (  # noqa: E402
    drop_database,
    kefu_env,
    prepare,
    scratch_database,
)
from kefu.dialog import TEXT  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402
from tests.wechat_api import serve_fake_wechat_api  # noqa: E402

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
RECOVERY_WAIT = 60.0


@dataclass
class Outcome:
    """One scenario's row of the report."""

    scenario: str
    sent: int
    answered: int  # an answer (or, while a person owns the conversation, a quiet success)
    busy: int  # the polite "busy, kept for later" reply
    other: int  # an error status, a timeout, a dropped connection
    p50_ms: float
    max_ms: float
    over_5s: int
    recovered_s: float  # from the end of the fault until every kept message was handled
    processed: int  # messages with a dedupe row (handled once) after recovery
    lost: int
    note: str = ""


def classify(run: loadgen.RateResult) -> tuple[int, int, int]:
    """(answered, busy, failed) among a run's deliveries.

    "answered" includes ``success`` (no reply) where that is the right answer: while a person
    owns the conversation the bot stays quiet. "failed" is an error status, a timeout or a
    connection dropped without an answer.
    """
    answered = busy = failed = 0
    for body in run.bodies:
        text = loadgen.reply_text(body) if body else None
        if text == TEXT["busy"]:
            busy += 1
        elif text is not None or body.strip() == b"success":
            answered += 1
        else:
            failed += 1
    return answered, busy, failed


class Rig:
    """kefu under gunicorn behind fault proxies, on a scratch database."""

    def __init__(self, kb: Path, spool: str, api_url: str) -> None:
        self.db_url = scratch_database()
        self.pg = FaultProxy(PG)
        self.redis = FaultProxy(REDIS)
        name = self.db_url.rsplit("/", 1)[1]
        self.direct_url = self.db_url
        env = kefu_env(f"postgresql://postgres@127.0.0.1:{self.pg.port}/{name}", spool)
        env["REDIS_URL"] = f"redis://127.0.0.1:{self.redis.port}/2"
        env["WECHAT_APP_SECRET"] = "bench-secret"
        env["WECHAT_API_BASE_URL"] = api_url
        self.env = env
        self.spool = spool
        prepare(self.direct_url, kb, {**env, "DATABASE_URL": self.direct_url})
        self.server = loadgen.Server("wsgi:app", 8613, env)
        self.server.wait()
        self.seed = 100

    def deliveries(
        self, count: int, texts: list[str], users: int = 200, prefix: str = "o_bench_"
    ) -> list[loadgen.Delivery]:
        """Fresh deliveries (new MsgIds and nonces every call)."""
        self.seed += 1
        return loadgen.deliveries(count, texts, users=users, seed=self.seed, prefix=prefix)

    def processed(self, load: list[loadgen.Delivery]) -> int:
        """How many of ``load`` the database has a dedupe row for."""
        keys = [f"msg:{d.msg_id}" for d in load]
        with psycopg.connect(self.direct_url.replace("+psycopg", "")) as conn:
            row = conn.execute(
                "SELECT count(*) FROM inbound_messages WHERE dedupe_key = ANY(%s)", (keys,)
            ).fetchone()
        return int(row[0]) if row else 0

    def wait_recovered(self, load: list[loadgen.Delivery], started: float) -> float:
        """Seconds until every message of ``load`` was processed (or the wait ran out)."""
        while time.monotonic() - started < RECOVERY_WAIT:
            if self.processed(load) == len(load):
                return time.monotonic() - started
            # A message after the fault starts the replay of what was kept, as traffic would.
            loadgen.at_rate(self.server.url, self.deliveries(1, ["你好"]), 1)
            time.sleep(1)
        return float("nan")

    def close(self) -> None:
        """Stop everything and drop the database."""
        self.server.stop()
        self.pg.close()
        self.redis.close()
        drop_database(self.direct_url)


def scenario(
    rig: Rig,
    name: str,
    texts: list[str],
    seconds: int,
    rate: int,
    fault: Callable[[], None],
    restore: Callable[[], None],
    note: str = "",
) -> Outcome:
    """Send ``rate``/s through the fault for ``seconds``, restore, wait for recovery."""
    during = rig.deliveries(rate * seconds, texts)
    fault()
    run = loadgen.at_rate(rig.server.url, during, rate)
    restore()
    ended = time.monotonic()
    after = rig.deliveries(rate * 2, texts)
    after_run = loadgen.at_rate(rig.server.url, after, rate)
    everything = during + after
    recovered = rig.wait_recovered(everything, ended)
    processed = rig.processed(everything)
    answered, busy, other = classify(run)
    a2, b2, o2 = classify(after_run)
    latencies = run.latencies_ms + after_run.latencies_ms
    all_ms = sorted(latencies) or [float("nan")]
    return Outcome(
        scenario=name,
        sent=len(everything),
        answered=answered + a2,
        busy=busy + b2,
        other=other + o2,
        p50_ms=all_ms[len(all_ms) // 2],
        max_ms=all_ms[-1],
        over_5s=sum(1 for t in latencies if t > 5000) + (other + o2),
        recovered_s=recovered,
        processed=processed,
        lost=len(everything) - processed,
        note=note,
    )


def worker_killed(rig: Rig) -> Outcome:
    """A repair form in chat; the workers are SIGKILLed while a step is in flight."""
    steps = [
        "我要报修",
        "AS2099X0000001",
        "晚上画面全黑，红外灯不亮",
        "张先生",
        "13917384526",
        "浙江省杭州市西湖区文三路 100 号",
        "2025-03-01",
        "没有",
        "是",
    ]
    replies: list[str] = []
    latencies: list[float] = []
    sent: list[loadgen.Delivery] = []
    retried = 0
    for number, step in enumerate(steps):
        (delivery,) = rig.deliveries(1, [step], users=1, prefix="o_form_")
        sent.append(delivery)
        if number == 4:
            # Kill the workers while this step is being handled: its request dies unanswered.
            for victim in rig.server.workers():
                threading.Timer(0.005, os.kill, args=(victim, signal.SIGKILL)).start()
        run = loadgen.at_rate(rig.server.url, [delivery], 1)
        while not run.answered and retried < 5:
            # No reply: WeChat delivers the same MsgId again (here with a fresh signature).
            retried += 1
            time.sleep(1)
            rig.seed += 1
            again = loadgen.deliveries(
                1, [step], users=1, seed=rig.seed, first_id=delivery.msg_id, prefix="o_form_"
            )
            run = loadgen.at_rate(rig.server.url, again, 1)
        latencies += run.latencies_ms
        replies.append(loadgen.reply_text(run.bodies[0]) or "" if run.bodies[0] else "")
    processed = rig.processed(sent)
    completed = any("工单" in r for r in replies[-3:])
    note = f"retried {retried}; form completed: {completed}; replies: " + " / ".join(
        r.splitlines()[0][:30] if r else "(none)" for r in replies
    )
    return Outcome(
        "worker_killed",
        len(sent),
        sum(1 for r in replies if r and r != TEXT["busy"]),
        sum(1 for r in replies if r == TEXT["busy"]),
        sum(1 for r in replies if not r),
        sorted(latencies)[len(latencies) // 2] if latencies else float("nan"),
        max(latencies) if latencies else float("nan"),
        sum(1 for t in latencies if t > 5000),
        0.0,
        processed,
        len(sent) - processed,
        note,
    )


def import_with_stand_in_vectors(rig: Rig, path: Path) -> None:
    """``kb import`` of ``path`` (entries and saved index in one step), with stand-in vectors.

    Embedding the phrasings of 100k entries with the real model takes hours on these cores;
    pseudo-random unit vectors (benchmarks/nlu_latency.py) give an index of the same shape and
    size, which is what a restart loads. The steps are the command's: upsert, build and save
    the new revision's index, then commit, so the running workers never build it themselves.
    """
    from sqlalchemy import select

    from benchmarks.nlu_latency import hash_vectors
    from kefu import create_app, kb
    from kefu.extensions import db
    from kefu.models import KbEntry
    from kefu.nlu import HybridIndex

    os.environ.update({**rig.env, "DATABASE_URL": rig.direct_url})
    app = create_app()
    with app.app_context():
        started = time.monotonic()
        created, updated = kb.upsert(kb.read_file(path))
        db.session.flush()
        folder = kb.index_folder(kb.current_revision())
        docs = kb.index_docs(list(db.session.scalars(select(KbEntry)).all()))
        tmp = folder.with_name("." + folder.name)
        HybridIndex.build(docs, embed=hash_vectors).save(tmp)
        tmp.rename(folder)
        db.session.commit()
        db.engine.dispose()
    print(
        f"  imported {created} new, {updated} updated entries with their index in "
        f"{time.monotonic() - started:.0f} s"
    )


def restart_100k(rig: Rig, texts: list[str], size: int, seconds: int, rate: int) -> Outcome:
    """Import ``size`` entries, then a graceful restart (HUP) of gunicorn under load."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
        for i in range(size):
            out.write(
                json.dumps(
                    {
                        "id": f"gen_{i:06d}",
                        "question": f"第{i}号产品的第{i % 97}项功能怎么设置",
                        "answer": f"请参考第{i}号说明。",
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    import_with_stand_in_vectors(rig, Path(out.name))
    os.unlink(out.name)
    time.sleep(2)
    load = rig.deliveries(rate * seconds, texts)
    timeline: list[tuple[float, int]] = []
    stop = threading.Event()

    def probe() -> None:
        import urllib.request

        while not stop.is_set():
            try:
                with urllib.request.urlopen(rig.server.url + "/healthz", timeout=2) as response:
                    status = response.status
            except Exception as exc:  # 503 raises HTTPError; a refused connection, OSError
                status = getattr(exc, "code", 0)
            timeline.append((time.monotonic() - started, status))
            time.sleep(0.5)

    started = time.monotonic()
    os.kill(rig.server.process.pid, signal.SIGHUP)
    poller = threading.Thread(target=probe, daemon=True)
    poller.start()
    run = loadgen.at_rate(rig.server.url, load, rate)
    rig.server.wait(timeout=600)
    stop.set()
    poller.join()
    unready = [t for t, status in timeline if status != 200]
    ready_note = (
        f"/healthz 503 from {unready[0]:.0f} s to {unready[-1]:.0f} s after HUP"
        if unready
        else "/healthz never 503"
    )
    master, workers = rig.server.memory_mb()
    ready_note += (
        f"; PSS per worker {', '.join(f'{w:.0f}' for w in workers)} MB, master {master:.0f} MB"
    )
    ended = time.monotonic()
    recovered = rig.wait_recovered(load, ended)
    processed = rig.processed(load)
    answered, busy, other = classify(run)
    ms = run.latencies_ms or [float("nan")]
    return Outcome(
        "restart_100k",
        len(load),
        answered,
        busy,
        other,
        ms[len(ms) // 2],
        ms[-1],
        sum(1 for t in run.latencies_ms if t > 5000) + other,
        recovered,
        processed,
        len(load) - processed,
        ready_note,
    )


def main() -> None:
    """Run the scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--kb-size", type=int, default=100_000)
    parser.add_argument("--only", default="")
    parser.add_argument("--kb", type=Path, default=ROOT.parent / "shared/eval/kb_dev.jsonl")
    parser.add_argument(
        "--questions", type=Path, default=ROOT.parent / "shared/eval/questions_dev.jsonl"
    )
    args = parser.parse_args()
    texts = [json.loads(x)["text"] for x in args.questions.read_text("utf-8").splitlines() if x]
    wanted = set(filter(None, args.only.split(","))) or {
        "pg_refused",
        "pg_blackholed",
        "redis_down",
        "wechat_api_hanging",
        "worker_killed",
        "restart_100k",
    }
    outcomes: list[Outcome] = []
    index_root = ROOT / "instance" / "kb-index"
    indexes_before = set(index_root.glob("*")) if index_root.exists() else set()
    with tempfile.TemporaryDirectory() as spool, serve_fake_wechat_api() as api:
        rig = Rig(args.kb, spool, api.url)
        try:
            s, r = args.seconds, args.rate
            plan: list[tuple[str, Callable[[], Outcome]]] = [
                (
                    "pg_refused",
                    lambda: scenario(rig, "pg_refused", texts, s, r, rig.pg.refuse, rig.pg.forward),
                ),
                (
                    "pg_blackholed",
                    lambda: scenario(
                        rig,
                        "pg_blackholed",
                        texts,
                        s,
                        r,
                        lambda: setattr(rig.pg, "mode", "blackhole"),
                        rig.pg.forward,
                    ),
                ),
                (
                    "redis_down",
                    lambda: scenario(
                        rig, "redis_down", texts, s, r, rig.redis.refuse, rig.redis.forward
                    ),
                ),
                (
                    "wechat_api_hanging",
                    lambda: scenario(
                        rig,
                        "wechat_api_hanging",
                        texts + ["转人工"],
                        s,
                        r,
                        lambda: setattr(api, "delay", 30.0),
                        lambda: setattr(api, "delay", 0.0),
                    ),
                ),
                ("worker_killed", lambda: worker_killed(rig)),
                ("restart_100k", lambda: restart_100k(rig, texts, args.kb_size, s * 3, r)),
            ]
            for name, run in plan:
                if name in wanted:
                    print(f"running {name} ...", flush=True)
                    outcomes.append(run())
                    print("  ", outcomes[-1], flush=True)
        finally:
            rig.close()
            # The saved indexes of this run's scratch knowledge bases.
            for folder in set(index_root.glob("*")) - indexes_before if index_root.exists() else ():
                shutil.rmtree(folder, ignore_errors=True)
    header = (
        "| scenario | sent | answered | polite busy | failed | p50 ms | max ms | > 5 s "
        "| recovered after | processed | lost | note |"
    )
    print("\n" + header + "\n|" + "---|" * 12)
    for o in outcomes:
        print(
            f"| {o.scenario} | {o.sent} | {o.answered} | {o.busy} | {o.other} | {o.p50_ms:.0f} "
            f"| {o.max_ms:.0f} | {o.over_5s} | {o.recovered_s:.1f} s | {o.processed} | {o.lost} "
            f"| {o.note} |"
        )
    sys.exit(0 if all(o.lost == 0 and o.over_5s == 0 for o in outcomes) else 1)


if __name__ == "__main__":
    main()
