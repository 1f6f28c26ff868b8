"""docs/video.md's turnserver.conf, run by coturn on loopback: it relays for the time-limited
credentials kefu issues and refuses expired or forged ones."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kefu.video import turn_credentials

DOC = Path(__file__).resolve().parents[2] / "docs" / "video.md"
SECRET = "CHANGE-ME-to-a-long-random-string"

pytestmark = pytest.mark.skipif(
    shutil.which("turnserver") is None or shutil.which("turnutils_uclient") is None,
    reason="coturn is not installed (scripts/system-packages installs it)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def documented_conf() -> str:
    """The turnserver.conf block of docs/video.md, exactly as documented."""
    match = re.search(r"```conf\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, "docs/video.md has no turnserver.conf block"
    return match.group(1)


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[int]:
    """coturn with the documented settings, changed only where a loopback test must: its
    addresses, ports, no certificates, a log file, and loopback peers allowed."""
    port = free_port()
    lines = []
    for line in documented_conf().splitlines():
        key = line.split("=", 1)[0]
        if key in {
            "listening-ip",
            "relay-ip",
            "external-ip",
            "cert",
            "pkey",
            "syslog",
            "listening-port",
            "tls-listening-port",
            "no-stdout-log",
        }:
            continue
        lines.append(line)
    lines += [
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        f"listening-port={port}",
        "no-tls",
        "no-dtls",
        f"log-file={tmp_path / 'turn.log'}",
        f"pidfile={tmp_path / 'turn.pid'}",
        f"userdb={tmp_path / 'turndb'}",
        "allow-loopback-peers",
        "allowed-peer-ip=127.0.0.1",
    ]
    conf = tmp_path / "turnserver.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen(
        ["turnserver", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(1.0)
        assert process.poll() is None, (tmp_path / "turn.log").read_text(errors="replace")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def relay(port: int, username: str, password: str) -> str:
    """A TURN client allocating and sending a few messages through the relay to itself."""
    done = subprocess.run(
        [
            "turnutils_uclient",
            "-p",
            str(port),
            "-u",
            username,
            "-w",
            password,
            "-n",
            "5",
            "-m",
            "1",
            "-y",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


def test_the_documented_turn_server_relays_with_kefus_credentials_only(turn: int) -> None:
    username, password = turn_credentials(SECRET, "c1", datetime.now(UTC), 600)
    out = relay(turn, username, password)
    received = re.findall(r"tot_recv_msgs=(\d+)", out)  # the last line is the total
    assert received and int(received[-1]) > 0, out
    # Expired an hour ago, or signed with another secret: no allocation.
    old_user, old_password = turn_credentials(
        SECRET, "c1", datetime.now(UTC) - timedelta(hours=1), 600
    )
    assert "Cannot complete Allocation" in relay(turn, old_user, old_password)
    forged_user, forged_password = turn_credentials("guess", "c1", datetime.now(UTC), 600)
    assert "Cannot complete Allocation" in relay(turn, forged_user, forged_password)
