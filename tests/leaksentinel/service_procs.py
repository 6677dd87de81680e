"""Helpers for tests that drive leaksentinel as a user does: CLI commands and long-running roles as
subprocesses, and waiting for what they should do (bounded, with their logs on failure)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["cli_ok", "logs_tail", "spawn", "wait_for"]


def cli_ok(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``leaksentinel ARGS`` in a subprocess; it must exit 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "leaksentinel", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"leaksentinel {' '.join(args)}: {proc.stderr}"
    return proc


def spawn(env: dict[str, str], log: IO[bytes], *args: str) -> subprocess.Popen[bytes]:
    """A long-running ``leaksentinel ARGS`` (run, worker, ...) in its own session, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "leaksentinel", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def logs_tail(paths: list[Path], chars: int = 2500) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in paths if p.exists())


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, logs: list[Path]) -> Any:
    """Poll ``predicate`` until it is truthy (returned), or fail saying ``what`` with the logs' tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"{what} within {timeout:.0f} s; logs:\n{logs_tail(logs)}")
