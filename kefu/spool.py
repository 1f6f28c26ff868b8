"""Messages that could not be handled yet, kept in a local file until they can be.

While the database is down (or the index still loading) the webhook cannot process a message,
but WeChat will not deliver it again once it has had a reply. So the message is appended to
``SPOOL_DIR/pending.jsonl`` (one JSON object per line, a single ``write`` in append mode,
which concurrent workers cannot interleave), and handled later by whichever worker first
claims the file: claiming is an atomic rename, so no message is handled twice by two workers.
A local file needs nothing that might be down at the same time as the database.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

PENDING = "pending.jsonl"
# Messages whose handling failed for another reason than the database (a bug): kept for a
# person to look at, so that one of them cannot hold up the others.
FAILED = "failed.jsonl"


def keep(directory: str, record: dict[str, Any], name: str = PENDING) -> None:
    """Append ``record`` to the pending file (created with owner-only permissions)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def has_pending(directory: str) -> bool:
    """Whether any message is waiting (a directory listing: cheap enough for every request)."""
    try:
        return any(n.endswith(".jsonl") and n != FAILED for n in os.listdir(directory))
    except FileNotFoundError:
        return False


def waiting_openids(directory: str) -> set[str]:
    """The users who have messages waiting (their next message must wait behind them)."""
    found: set[str] = set()
    for path in Path(directory).glob("*.jsonl"):
        if path.name == FAILED:
            continue
        found.update(str(r.get("inbound", {}).get("openid", "")) for r in read(path))
    return found


def mine(directory: str) -> list[Path]:
    """Files this process claimed earlier and has not finished (the database went away again)."""
    prefix = f"claimed-{os.getpid()}-"
    return sorted(
        (p for p in Path(directory).glob(prefix + "*.jsonl")), key=lambda p: p.stat().st_mtime
    )


def put_back(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace a claimed file's content with the records still to be handled, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    os.replace(tmp, path)


def claim(directory: str) -> Path | None:
    """Take the pending file for this process; None when there is none or another took it."""
    target = Path(directory) / f"claimed-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    try:
        os.rename(os.path.join(directory, PENDING), target)
    except FileNotFoundError:
        return None
    return target


def orphans(directory: str) -> list[Path]:
    """Claimed files whose process is gone (it was killed while handling them)."""
    found = []
    for path in Path(directory).glob("claimed-*.jsonl"):
        try:
            pid = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            found.append(path)
    return found


def adopt(path: Path) -> Path | None:
    """Take over a dead process's claimed file; None when another process took it first."""
    target = path.with_name(f"claimed-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl")
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a claimed file; a torn last line (a crash mid-write) is skipped."""
    records = []
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        # Replayed and removed (or claimed under another name) by another worker since the
        # folder was listed: nothing of it is left to read here.
        return []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def count(directory: str) -> int:
    """Messages waiting, pending and claimed (for monitoring and tests)."""
    total = 0
    for path in Path(directory).glob("*.jsonl"):
        if path.name != FAILED:
            total += len(read(path))
    return total


def failed(directory: str) -> int:
    """Messages set aside because handling them failed for another reason."""
    path = Path(directory) / FAILED
    return len(read(path)) if path.exists() else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
