"""Benchmark: video-guidance calls between two Chromiums with fake cameras, on loopback.

    .venv/bin/python benchmarks/video_signalling.py [--calls 3] [--redis redis://127.0.0.1:6379/8]

kefu runs on a scratch PostgreSQL database (KEFU_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/postgres, built by the migrations and dropped afterwards),
served by werkzeug in a thread, with a fake WeChat API on loopback delivering the links. Without
``--redis`` the offer and answer are kept in the database; with it, in that Redis database
(its keys expire and are deleted when each call ends). For each call: a user hands off, the
agent presses 视频指导 on the conversation, the customer (a phone-sized Chromium context) opens
the link and taps 加入视频, and both sides wait for media; then the agent hangs up.

Measured per call:
- tap to first frame: from the customer's tap (camera asked from it) to the first decoded frame
  of the customer's camera on the agent's screen (``requestVideoFrameCallback``), both browser
  clocks on one machine;
- the signalling's cost: requests to the call's endpoints (offer, polls, join, answer, events,
  end; not the pages and static files) and the server time they took, measured around the WSGI
  app.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.console_queue import scratch_database  # noqa: E402

SIGNAL_RE = re.compile(
    r"^/console/video/\d+/(offer|state\.json|connected|end)$|^/v/[^/]+/(join|offer|answer|event)$"
)


class Meter:
    """WSGI middleware: requests and server time per signalling endpoint."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting a new call."""
        with self.lock:
            self.count: dict[str, int] = defaultdict(int)
            self.ms: dict[str, float] = defaultdict(float)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        match = SIGNAL_RE.match(path)
        if not match:
            return self.app(environ, start_response)
        started = time.perf_counter()
        body = self.app(environ, start_response)
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        elapsed = (time.perf_counter() - started) * 1000
        name = ("agent " if path.startswith("/console") else "customer ") + (
            match.group(1) or match.group(2)
        )
        with self.lock:
            self.count[name] += 1
            self.ms[name] += elapsed
        return [data]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--redis", default="", help="Redis URL for the signalling (else the DB)")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from kefu import create_app, staff
    from kefu.extensions import db
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.browser.test_video import (
        MEDIA_ARGS,
        PASSWORD,
        contexts,
        log_in,
        run_call,
    )
    from tests.conftest import FakeWeChat, make_config
    from tests.wechat_api import serve_fake_wechat_api

    with scratch_database() as url, serve_fake_wechat_api() as api:
        app = create_app(
            make_config(
                url,
                REDIS_URL=args.redis,
                JOBS_EAGER=True,
                CONSOLE_DUTY_HOURS="00:00-24:00",
                WECHAT_API_BASE_URL=api.url,
            )
        )
        with app.app_context():
            upgrade()
            member = staff.create("alice", PASSWORD, "agent", "王小丽")
            member.on_duty = True
            db.session.commit()
        meter = Meter(app.wsgi_app)
        app.wsgi_app = meter  # type: ignore[method-assign]
        server = make_server("127.0.0.1", 0, app, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        user = FakeWeChat(app.test_client())
        setups: list[float] = []
        costs: list[tuple[int, float]] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS
                )
                for n in range(args.calls):
                    openid = f"o_bench{n}"
                    user.event(openid, "CLICK", key="MENU_HUMAN")
                    user.text(openid, "门铃装好了但是不亮")
                    agent_context, agent, phone = contexts(browser)
                    log_in(agent, base)
                    agent.locator("#waiting .qrow a").first.click()
                    agent.wait_for_url(re.compile(r".*/console/c/\d+$"))
                    conversation = agent.url
                    meter.reset()
                    agent.locator("#video").get_by_role("button", name="视频指导").click()
                    result = run_call(agent, phone, base, api, own_camera=False)
                    agent.get_by_role("button", name="挂断").click()
                    phone.wait_for_timeout(2500)  # the customer's page notices the end
                    # Back in the queue, so the next user's conversation is the first row.
                    agent.goto(conversation)
                    agent.get_by_role("button", name="交还机器人").click()
                    with meter.lock:
                        requests = sum(meter.count.values())
                        server_ms = sum(meter.ms.values())
                        detail = dict(meter.count)
                    setups.append(result.tap_to_first_frame_ms)
                    costs.append((requests, server_ms))
                    print(
                        f"call {n + 1}: tap to first frame {result.tap_to_first_frame_ms:.0f} ms;"
                        f" signalling {requests} requests, {server_ms:.1f} ms server time"
                        f" ({', '.join(f'{k} x{v}' for k, v in sorted(detail.items()))});"
                        f" agent received {result.agent_video}"
                    )
                    phone.context.close()
                    agent_context.close()
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    store = "Redis" if args.redis else "the database"
    print(
        f"\n{args.calls} calls, signalling in {store}: tap to first frame median "
        f"{statistics.median(setups):.0f} ms (max {max(setups):.0f}); per call median "
        f"{statistics.median(c[0] for c in costs):.0f} requests, "
        f"{statistics.median(c[1] for c in costs):.1f} ms server time "
        f"({statistics.median(c[1] / c[0] for c in costs):.2f} ms per request)"
    )


if __name__ == "__main__":
    main()
