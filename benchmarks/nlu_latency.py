"""Latency of kefu.nlu.understand() on generated knowledge bases (default 500 and 100k entries).

Usage: python benchmarks/nlu_latency.py [--sizes 500,100000] [--queries 1000] [--keep DIR]
                                        [--kb-vectors model|hash]

Entries combine product, model, feature and symptom vocabularies into believable Chinese
support questions with alternates; queries are paraphrase-like recombinations of the same
vocabularies (some hit an entry closely, some are vague, some are out of scope). Every message
is embedded by the real model inside the timing. The KB's own rows are embedded by the model
too, unless ``--kb-vectors hash`` (the default above 5,000 entries) gives them deterministic
pseudo-random unit vectors: embedding a million rows takes hours on these cores, while the
search reads the same arrays either way. The index is saved, then loaded in a fresh process,
which reports its load time, resident memory and the latency of the answers.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.nlu import HybridIndex, KbDoc, dense, understand  # noqa: E402

PRODUCTS = [
    "摄像头",
    "云台摄像头",
    "枪机",
    "球机",
    "半球摄像机",
    "4G摄像头",
    "太阳能摄像头",
    "门铃",
    "可视门铃",
    "电子猫眼",
    "智能锁",
    "指纹锁",
    "录像机",
    "NVR",
    "硬盘录像机",
    "安视云App",
    "电脑客户端",
    "无线套装",
    "室外摄像机",
    "婴儿看护器",
    "宠物摄像头",
    "人脸门锁",
]
SERIES = ["C", "D", "L", "N", "S", "K", "X", "P"]
FEATURES = [
    "夜视",
    "移动侦测",
    "人形检测",
    "双向对讲",
    "云台转动",
    "画面翻转",
    "隐私遮蔽",
    "录像回放",
    "云存储",
    "存储卡",
    "声光警戒",
    "WiFi配网",
    "有线连接",
    "设备分享",
    "消息推送",
    "固件升级",
    "时间同步",
    "录音",
    "指纹录入",
    "临时密码",
    "常开模式",
    "门铃按键",
    "快捷回复",
    "电池续航",
    "HDMI输出",
    "通道添加",
    "远程查看",
    "报警联动",
    "区域入侵",
    "越界检测",
    "音量调节",
    "画质设置",
    "流量卡",
    "自动续费",
    "账号登录",
    "验证码",
    "设备改名",
    "分组管理",
]
SYMPTOMS = [
    "不工作",
    "没反应",
    "一直失败",
    "提示超时",
    "显示离线",
    "画面模糊",
    "没有声音",
    "报警太频繁",
    "收不到通知",
    "打不开",
    "设置不保存",
    "频繁掉线",
    "画面卡顿",
    "黑屏",
    "有杂音",
    "耗电太快",
    "找不到入口",
    "提示错误",
    "无法添加",
    "不准确",
    "延迟很大",
    "自动重启",
    "图像发白",
    "偏色",
]
TEMPLATES = [
    "{p}{m}的{f}{s}怎么办？",
    "{p}{m}{f}功能{s}是什么原因？",
    "为什么{p}{m}的{f}{s}？",
    "{p}{m}使用{f}时{s}，如何处理？",
]
ALT_TEMPLATES = ["{p}{f}{s}", "{m} {f}{s}了", "{f}{s}怎么解决", "{p}{s}", "{f}老是{s}"]
QUERY_TEMPLATES = [
    "{p}{f}{s}了怎么弄",
    "我的{p}{f}{s}",
    "{m}{f}{s}",
    "{f}{s}",
    "请问{p}{s}怎么回事",
    "{p}的{f}在哪里设置",
    "家里{p}{s}，急",
    "{p}买了三天就{s}",
]
OFF_TOPIC = ["你们公司在哪里招聘", "今天天气怎么样", "在吗", "谢谢", "比特币价格", "🙂🙂"]
AUDIENCES = ["all", "all", "end_user", "installer"]


def make_kb(n: int, rng: random.Random) -> list[KbDoc]:
    """Generate ``n`` distinct entries."""
    docs: list[KbDoc] = []
    seen: set[str] = set()
    while len(docs) < n:
        p, f, s = rng.choice(PRODUCTS), rng.choice(FEATURES), rng.choice(SYMPTOMS)
        m = f"{rng.choice(SERIES)}{rng.randint(1, 99)}"
        key = f"{p}|{m}|{f}|{s}"
        if key in seen:
            continue
        seen.add(key)
        q = rng.choice(TEMPLATES).format(p=p, m=m, f=f, s=s)
        alts = tuple(t.format(p=p, m=m, f=f, s=s) for t in rng.sample(ALT_TEMPLATES, 3))
        # An answer naming a second feature and symptom, so the answer field is exercised.
        ans = (
            f"请在安视云App打开{p}，进入“设置-{f}”检查；若{rng.choice(SYMPTOMS)}，"
            f"可重启后再试{rng.choice(FEATURES)}，仍有问题请联系售后。"
        )
        docs.append(KbDoc(f"gen_{len(docs)}", q, alts, rng.choice(AUDIENCES), (f,), ans))
    return docs


def make_queries(n: int, rng: random.Random) -> list[str]:
    """Generate ``n`` user-like messages over the same vocabularies."""
    out = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(rng.choice(OFF_TOPIC))
            continue
        p, f, s = rng.choice(PRODUCTS), rng.choice(FEATURES), rng.choice(SYMPTOMS)
        m = f"{rng.choice(SERIES)}{rng.randint(1, 99)}"
        out.append(rng.choice(QUERY_TEMPLATES).format(p=p, m=m, f=f, s=s))
    return out


def pctl(sorted_ms: list[float], q: float) -> float:
    """q-th percentile of a sorted list."""
    i = min(len(sorted_ms) - 1, max(0, round(q / 100 * (len(sorted_ms) - 1))))
    return sorted_ms[i]


def hash_vectors(texts: list[str]) -> np.ndarray:
    """Deterministic pseudo-random unit vectors, one per text (stand-ins for embeddings)."""
    out = np.empty((len(texts), dense.DIM), dtype=np.float32)
    for i, t in enumerate(texts):
        rng = np.random.default_rng(zlib.crc32(t.encode("utf-8")))
        v = rng.standard_normal(dense.DIM).astype(np.float32)
        out[i] = v / np.linalg.norm(v)
    return out


def memory_mb() -> tuple[float, float]:
    """This process's resident and proportional set sizes (shared mapped pages split), in MB."""
    rss = pss = 0.0
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


def _seconds(value: float, unit: str = " s") -> str:
    """A build time, or "reused" for an index an earlier run saved (``--keep``)."""
    return "reused" if value != value else f"{value:.1f}{unit}"


def serve(folder: str, queries: int, seed: int) -> int:
    """In a fresh process: load the saved index, answer messages, report as JSON."""
    t0 = time.perf_counter()
    index = HybridIndex.load(Path(folder))
    load_s = time.perf_counter() - t0
    rss_loaded = memory_mb()[0]
    dense.embedder()
    understand("摄像头离线", index)  # jieba, OpenCC and the model, outside the timings
    rng = random.Random(seed)
    times: list[float] = []
    kinds: dict[str, int] = {}
    for q in make_queries(queries, rng):
        t = time.perf_counter()
        u = understand(q, index, AUDIENCE)
        times.append((time.perf_counter() - t) * 1000)
        kinds[u.kind] = kinds.get(u.kind, 0) + 1
    times.sort()
    print(
        json.dumps(
            {
                "load_s": load_s,
                "rss_loaded_mb": rss_loaded,
                "rss_mb": memory_mb()[0],
                "pss_mb": memory_mb()[1],
                "p50": pctl(times, 50),
                "p95": pctl(times, 95),
                "p99": pctl(times, 99),
                "mean": statistics.fmean(times),
                "kinds": kinds,
            }
        )
    )
    return 0


AUDIENCE = frozenset({"all", "end_user"})


def main(argv: list[str] | None = None) -> int:
    """Build, save, load in a fresh process, answer; print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,100000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--kb-vectors", choices=["model", "hash"], default=None)
    ap.add_argument(
        "--keep",
        type=Path,
        help="save each index under this folder and reuse one saved there by an earlier run",
    )
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.queries, args.seed)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        rng = random.Random(args.seed + n)
        docs = make_kb(n, rng)
        vectors = args.kb_vectors or ("model" if n <= 5000 else "hash")
        embed = dense.embed if vectors == "model" else hash_vectors
        with tempfile.TemporaryDirectory() as tmp:
            folder = (args.keep or Path(tmp)) / f"index-{n}-{vectors}"
            t0 = time.perf_counter()
            try:
                HybridIndex.load(folder)
                build_s = float("nan")  # reused: see _seconds
            except ValueError:
                HybridIndex.build(docs, embed=embed).save(folder)
                build_s = time.perf_counter() - t0
            size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(folder),
                    "--queries",
                    str(args.queries),
                    "--seed",
                    str(args.seed + n),
                ],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return 1
            out = out.stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append((n, vectors, build_s, size_mb, r))
        print(
            f"[{n:>6}] build {_seconds(build_s)} ({vectors} KB vectors), {size_mb:.0f} MB on disk, "
            f"load {r['load_s']:.2f} s, RSS {r['rss_loaded_mb']:.0f} MB after load, "
            f"{r['rss_mb']:.0f} MB after the queries (PSS {r['pss_mb']:.0f}), "
            f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, {r['kinds']}",
            flush=True,
        )
    print()
    print(
        f"{'entries':>8} {'build s':>8} {'disk MB':>8} {'load s':>7} {'RSS MB':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    for n, _, b, size, r in rows:
        print(
            f"{n:>8} {_seconds(b, ''):>8} {size:>8.0f} {r['load_s']:>7.2f} {r['rss_mb']:>7.0f} "
            f"{r['p50']:>7.1f} {r['p95']:>7.1f} {r['p99']:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
