"""Load generation for the webhook benchmarks: WeChat-shaped deliveries, wrk, an open-loop sender.

Every delivery is signed and encrypted the way WeChat does it (safe mode), with its own MsgId
and nonce, so neither kefu's dedupe nor its nonce check sees a repeat; bodies are made before
the run so generating them costs the measured machine nothing while it is measured.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "kefu-bench-token"
APP_ID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
RUN = f"{random.SystemRandom().randrange(10**6):06d}"


@dataclass(frozen=True)
class Delivery:
    """One POST /wechat: the path with its signed query, and the encrypted body."""

    path: str
    body: bytes
    openid: str
    msg_id: int


def deliveries(
    count: int,
    questions: list[str],
    users: int = 1000,
    seed: int = 1,
    first_id: int = 0,
    prefix: str = "o_bench_",
) -> list[Delivery]:
    """``count`` encrypted text messages from ``users`` users, questions drawn at random."""
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    rng = random.Random(seed)
    timestamp = str(int(time.time()))
    first_id = first_id or rng.randrange(10**15, 9 * 10**15)
    made = []
    for i in range(count):
        openid = f"{prefix}{rng.randrange(users):05d}"
        msg_id = first_id + i
        nonce = f"{RUN}{seed}{i:08d}"  # unique across runs too: kefu remembers nonces
        xml = (
            "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{rng.choice(questions)}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        )
        envelope = ElementTree.fromstring(crypto.encrypt_message(xml, nonce, timestamp))
        query = {
            "signature": hashlib.sha1(
                "".join(sorted([TOKEN, timestamp, nonce])).encode()
            ).hexdigest(),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
            "encrypt_type": "aes",
            "msg_signature": envelope.findtext("MsgSignature") or "",
        }
        body = (
            "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
            f"<Encrypt><![CDATA[{envelope.findtext('Encrypt')}]]></Encrypt></xml>"
        ).encode()
        made.append(Delivery("/wechat?" + urlencode(query), body, openid, msg_id))
    return made


def reply_text(body: bytes) -> str | None:
    """The decrypted reply's Content ("" for a non-text reply, None for no reply)."""
    from wechatpy.crypto import WeChatCrypto

    if b"<Encrypt>" not in body:
        return None
    tree = ElementTree.fromstring(body)
    xml = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
        body, tree.findtext("MsgSignature"), tree.findtext("TimeStamp"), tree.findtext("Nonce")
    )
    return ElementTree.fromstring(xml).findtext("Content") or ""


# --- servers ----------------------------------------------------------------------------------


class Server:
    """A gunicorn serving ``app`` on loopback with the given environment."""

    def __init__(self, app: str, port: int, env: dict[str, str], workers: int = 2) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            app,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, path: str = "/healthz", timeout: float = 120) -> float:
        """Seconds until ``path`` answers 200 (raises after ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.url}{path} not ready after {timeout} s; see {self.log.name}")

    def workers(self) -> list[int]:
        """The worker processes' pids."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the workers (user + system)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def memory_mb(self) -> tuple[float, list[float]]:
        """Proportional set size (shared pages split between sharers) of the master and of
        each worker, in MB, from ``/proc/PID/smaps_rollup``."""

        def pss(pid: int) -> float:
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                return float("nan")
            line = next((x for x in text.splitlines() if x.startswith("Pss:")), "Pss: 0 kB")
            return int(line.split()[1]) / 1024

        return pss(self.process.pid), [pss(pid) for pid in self.workers()]

    def stop(self) -> None:
        """Stop gunicorn (graceful, then forced) and wait for it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# --- closed loop: wrk -------------------------------------------------------------------------

WRK_SCRIPT = r"""
local file, threads, counter = ..., {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  reqs, i, bad, n = {}, 0, 0, 0
  local k = 0
  for line in io.lines(args[1]) do
    if k % tonumber(args[2]) == id then
      local tab = line:find("\t")
      table.insert(reqs, wrk.format("POST", line:sub(1, tab - 1),
        {["Content-Type"] = "text/xml"}, line:sub(tab + 1)))
    end
    k = k + 1
  end
end
function request()
  i = i + 1
  return reqs[(i - 1) % #reqs + 1]
end
function response(status, headers, body)
  n = n + 1
  if status ~= 200 or not body:find("<Encrypt>", 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b, total = 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); total = total + t:get("n") end
  io.write(string.format("BAD %d OF %d\n", b, total))
end
"""


@dataclass
class WrkResult:
    """Closed-loop throughput: requests per second, latency percentiles, bad answers."""

    rps: float
    p50_ms: float
    p99_ms: float
    bad: int
    total: int
    raw: str = field(repr=False, default="")


def wrk(url: str, load: list[Delivery], seconds: int, connections: int = 8) -> WrkResult:
    """Run wrk against ``url`` with ``load`` split between its threads (no delivery twice)."""
    threads = 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "load.tsv"
        data.write_bytes(b"".join(d.path.encode() + b"\t" + d.body + b"\n" for d in load))
        script = Path(tmp) / "load.lua"
        script.write_text(WRK_SCRIPT)
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
                "--",
                str(data),
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad, total = map(int, re.search(r"BAD (\d+) OF (\d+)", out).groups())  # type: ignore[union-attr]
    return WrkResult(rps, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), bad, total, out)


def _wrk_ms(out: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# --- open loop: a fixed rate ------------------------------------------------------------------


@dataclass
class RateResult:
    """A fixed-rate run: every delivery's latency and what came back."""

    rate: float
    latencies_ms: list[float]  # of every 200 (a reply, or "success" while a person has the user)
    answered: int  # 200 with an encrypted reply
    statuses: dict[str, int]
    bodies: list[bytes] = field(repr=False, default_factory=list)

    def quantile(self, q: float) -> float:
        """Latency at quantile ``q`` (0..1), in ms."""
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=1000)[int(q * 1000) - 1]

    def within(self, ms: float) -> float:
        """Share of deliveries answered (200: a reply, or a quiet success) within ``ms``."""
        ok = sum(1 for t in self.latencies_ms if t <= ms)
        return ok / max(1, sum(self.statuses.values()))


async def _one(host: str, port: int, d: Delivery, timeout: float) -> tuple[str, float, bytes]:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        head = (
            f"POST {d.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(d.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + d.body)
        data = await asyncio.wait_for(reader.read(-1), timeout)
        writer.close()
    except (TimeoutError, OSError) as exc:
        return type(exc).__name__, (time.perf_counter() - started) * 1000, b""
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "garbled"
    return status, (time.perf_counter() - started) * 1000, data.split(b"\r\n\r\n", 1)[-1]


def at_rate(url: str, load: list[Delivery], rate: float, timeout: float = 10.0) -> RateResult:
    """Send ``load`` at ``rate`` per second regardless of answers (as WeChat does)."""
    host, port = url.split("//", 1)[1].split(":")

    async def run() -> list[tuple[str, float, bytes]]:
        start = time.perf_counter()
        tasks = []
        for i, d in enumerate(load):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(host, int(port), d, timeout)))
        return await asyncio.gather(*tasks)

    results = asyncio.run(run())
    statuses: dict[str, int] = {}
    latencies = []
    answered = 0
    for status, ms, body in results:
        statuses[status] = statuses.get(status, 0) + 1
        if status == "200":
            latencies.append(ms)
            answered += b"<Encrypt>" in body
    return RateResult(rate, sorted(latencies), answered, statuses, [r[2] for r in results])
