"""The factory is pure: a test config never picks up a developer's .env; kefu.wsgi reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kefu import create_app

from .conftest import make_config

CHECKOUT = Path(__file__).resolve().parents[1]


def test_a_local_env_file_is_not_read_with_a_test_config(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `make demo` writes: with it read, the demo chat would be on in every test app.
    (tmp_path / ".env").write_text("DEMO_CHAT=1\nTIMEZONE=UTC\nBRAND_NAME=本地演示\n")
    monkeypatch.chdir(tmp_path)
    app = create_app(make_config(database_url))
    assert not app.config["DEMO_CHAT"] and app.config["BRAND_NAME"] != "本地演示"
    assert "DEMO_CHAT" not in os.environ and "BRAND_NAME" not in os.environ
    assert app.test_client().get("/demo/chat").status_code == 404


def test_the_wsgi_module_reads_env_without_overriding_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SECRET_KEY=from-dotenv\nDEMO_CHAT=1\nBRAND_NAME=本地演示\n"
        f"DATABASE_URL=sqlite:///{tmp_path}/kefu.sqlite3\n"
    )
    env = {**os.environ, "BRAND_NAME": "环境变量", "PYTHONPATH": str(CHECKOUT)}
    env.pop("DEMO_CHAT", None)
    script = (
        "from kefu.wsgi import app; c = app.config; "
        "print(c['SECRET_KEY'], c['DEMO_CHAT'], c['BRAND_NAME'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from-dotenv", "True", "环境变量"]
