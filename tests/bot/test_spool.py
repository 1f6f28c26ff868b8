"""The local spool of messages kept while the database is away."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefu import spool


def _record(openid: str) -> dict[str, object]:
    return {"inbound": {"openid": openid}, "reason": "database"}


def test_waiting_users_are_read_from_every_kept_file(tmp_path: Path) -> None:
    spool.keep(str(tmp_path), _record("o_a"))
    spool.keep(str(tmp_path), _record("o_b"), name="claimed-1-x.jsonl")
    assert spool.waiting_openids(str(tmp_path)) == {"o_a", "o_b"}


def test_a_file_replayed_between_listing_and_reading_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker finishes replaying (and removes) a file after this one listed the folder:
    # the message being answered must not fail because of it.
    spool.keep(str(tmp_path), _record("o_a"))
    spool.keep(str(tmp_path), _record("o_b"), name="claimed-1-x.jsonl")
    real = spool.read

    def replayed_meanwhile(path: Path) -> list[dict[str, object]]:
        if path.name.startswith("claimed-"):
            path.unlink()
        return real(path)

    monkeypatch.setattr(spool, "read", replayed_meanwhile)
    assert spool.waiting_openids(str(tmp_path)) == {"o_a"}
