"""``leaksentinel run``: serves the API, keeps other commands working, stops everything on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from core.redis_embedded import free_port

pytestmark = pytest.mark.slow


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leaksentinel", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_run_serves_and_stops_on_sigterm_leaving_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "LEAKSENTINEL_HOME": str(tmp_path / "home")}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "leaksentinel", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("service did not come up: " + proc.stderr.read1().decode(errors="replace"))  # type: ignore[union-attr]
        assert "openapi" in httpx.get(base + "/openapi.json").json()
        assert httpx.get(base + "/api/v1/alerts").status_code == 401
        assert httpx.get(base + "/api/v1/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401
        # Other commands keep working on the same home while the service runs.
        added = _cli(env, "tenant", "add", "acme", "--json")
        assert added.returncode == 0, added.stderr
        api_key = json.loads(added.stdout.strip().splitlines()[-1])["api_key"]
        assert httpx.get(base + "/api/v1/alerts", headers={"Authorization": f"Bearer {api_key}"}).json() == []
        assert "csp" not in httpx.get(base + "/").headers.get("content-security-policy", "csp")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("redis-server" in (c.name() or "") for c in children)
        assert any("celery" in " ".join(c.cmdline()) for c in children)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(25)
        assert time.monotonic() - started < 20
        time.sleep(0.5)
        assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_run_on_a_port_in_use_fails_clearly_and_leaves_nothing(tmp_path: Path) -> None:
    import socket

    env = {**os.environ, "LEAKSENTINEL_HOME": str(tmp_path / "home")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "leaksentinel", "run", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert "could not listen" in proc.stderr and "Traceback" not in proc.stderr
