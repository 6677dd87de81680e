"""What importing the core package does: numpy's OpenBLAS keeps to one thread (no spinning thread per
core at every process start), unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_COUNT = "import {module}, numpy, os; print(len(os.listdir('/proc/self/task')), os.environ['OPENBLAS_NUM_THREADS'])"


def _threads(module: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
    out = subprocess.run(
        [sys.executable, "-c", _COUNT.format(module=module)],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    return int(out[0]), out[1]


@pytest.mark.skipif(
    not Path("/proc/self/task").exists() or (os.cpu_count() or 1) < 2, reason="Linux, 2+ cores"
)
@pytest.mark.parametrize("module", ["leaksentinel.cli.main", "crawlers.run", "pipelines.detect"])
def test_a_process_starts_no_blas_threads(module: str) -> None:
    assert _threads(module) == (1, "1")


@pytest.mark.skipif(
    not Path("/proc/self/task").exists() or (os.cpu_count() or 1) < 2, reason="Linux, 2+ cores"
)
def test_the_users_own_choice_stays() -> None:
    threads, chosen = _threads("core", OPENBLAS_NUM_THREADS="2")
    assert chosen == "2" and threads == 2
