"""``leaksentinel demo`` on an empty home: delivers alerts, reads in ten seconds, leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = [
    pytest.mark.slow,
    # The demo always runs on its own embedded SQLite (leaksentinel/demo.py sets database_url=""), so a
    # PostgreSQL variant would run the very same thing twice.
    pytest.mark.sqlite_only("the demo uses its own embedded SQLite whatever the configuration"),
]


def _ours(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            if str(home) in " ".join(proc.info["cmdline"] or []) or (
                (proc.info["environ"] or {}).get("LEAKSENTINEL_HOME", "").startswith(str(home))
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_demo_delivers_alerts_and_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    env = {**os.environ, "LEAKSENTINEL_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "leaksentinel", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    # Four leaking pastes, one of them a repost: three leaks, three alerts, three deliveries.
    assert result["alerts"] == 3 and result["delivered"] == 3 and result["valid_signatures"] == 3
    assert result["seconds"] < 60
    text = "\n".join(lines[:-1])
    assert "delivered 3 alert events" in text and "1 repost(s) joined" in text and "look next" in text
    assert len(lines) <= 16  # readable in ten seconds
    assert _ours(home) == []
    # A second run starts from scratch and gives the same story.
    again = subprocess.run(
        [sys.executable, "-m", "leaksentinel", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(again.stdout.strip().splitlines()[-1])["alerts"] == 3
