"""Latency of kefu.nlu.understand() on generated knowledge bases of 1k, 10k and 100k entries.

Usage: python benchmarks/nlu_latency.py [--sizes 1000,10000,100000] [--queries 3000]

Entries combine product, model, feature and symptom vocabularies into believable Chinese
support questions with alternates; queries are paraphrase-like recombinations of the same
vocabularies (some hit an entry closely, some are vague, some are out of scope). Prints
build time and p50/p95/p99 latency per size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.nlu import KbDoc, KbIndex, understand  # noqa: E402
from kefu.nlu import index as index_module  # noqa: E402

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
        ans = (f"请在安视云App打开{p}，进入“设置-{f}”检查；若{rng.choice(SYMPTOMS)}，"
               f"可重启后再试{rng.choice(FEATURES)}，仍有问题请联系售后。")
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-type-penalty", action="store_true",
                    help="switch the device-type mismatch penalty off (to measure its cost)")
    args = ap.parse_args(argv)
    index_module.TYPE_PENALTY = not args.no_type_penalty
    sizes = [int(s) for s in args.sizes.split(",")]
    audiences = frozenset({"all", "end_user"})

    # Warm jieba (dictionary load) outside the timings.
    understand("摄像头离线", KbIndex.build([KbDoc("w", "摄像头离线怎么办", (), "all")]))
    results = []
    for n in sizes:
        rng = random.Random(args.seed + n)
        print(f"[{n:>6}] generating KB ...", flush=True)
        docs = make_kb(n, rng)
        t0 = time.perf_counter()
        index = KbIndex.build(docs)
        build_s = time.perf_counter() - t0
        print(
            f"[{n:>6}] built index in {build_s:.1f} s; running {args.queries} queries ...",
            flush=True,
        )
        queries = make_queries(args.queries, rng)
        for q in queries[:50]:  # warm caches
            understand(q, index, audiences)
        times: list[float] = []
        kinds: dict[str, int] = {}
        for i, q in enumerate(queries, 1):
            t = time.perf_counter()
            u = understand(q, index, audiences)
            times.append((time.perf_counter() - t) * 1000)
            kinds[u.kind] = kinds.get(u.kind, 0) + 1
            if i % 1000 == 0:
                print(f"[{n:>6}]   {i} queries", flush=True)
        times.sort()
        row = (
            n,
            build_s,
            pctl(times, 50),
            pctl(times, 95),
            pctl(times, 99),
            statistics.fmean(times),
            kinds,
        )
        results.append(row)
        print(
            f"[{n:>6}] p50 {row[2]:.2f} ms  p95 {row[3]:.2f} ms  p99 {row[4]:.2f} ms  {kinds}",
            flush=True,
        )
        del index, docs
    print()
    print(f"{'entries':>8} {'build s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for n, b, p50, p95, p99, mean, _ in results:
        print(f"{n:>8} {b:>8.1f} {p50:>8.2f} {p95:>8.2f} {p99:>8.2f} {mean:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
