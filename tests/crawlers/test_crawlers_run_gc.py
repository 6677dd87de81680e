"""The crawl process keeps what start-up loaded out of the cycle collector's way (crawlers.run.tune_gc)."""

from __future__ import annotations

import subprocess
import sys

from crawlers.run import GC_THRESHOLD


def test_a_crawl_process_freezes_its_start_up_objects_and_collects_less_often() -> None:
    # In a process of its own: freezing is process-wide and would change how this test run collects.
    code = (
        "import gc, crawlers.run as run\n"
        "assert gc.get_freeze_count() == 0\n"
        "run.tune_gc()\n"
        "print(gc.get_freeze_count(), *gc.get_threshold())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    frozen, *threshold = (int(v) for v in out.stdout.split())
    assert frozen > 10_000  # the modules' objects, at least
    assert tuple(threshold) == GC_THRESHOLD and GC_THRESHOLD[0] >= 10 * 700
