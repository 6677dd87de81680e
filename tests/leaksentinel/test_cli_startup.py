"""What a ``leaksentinel`` command loads at start-up: only what it runs.

Why: every command is a new process (a security team's ``scan`` of one file, an operator's ``source
list``), and its start-up is CPU the user waits for; Scrapy and Twisted alone took ~0.2 s of it when the
crawl command's progress file helpers imported them for every command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported(args: list[str]) -> set[str]:
    """The modules ``python -m leaksentinel <args>`` imported (from ``-X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "leaksentinel", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stderr, re.MULTILINE))


def test_scan_and_source_list_do_not_load_the_crawler_framework(tmp_path: Path) -> None:
    posting = tmp_path / "posting.txt"
    posting.write_text("user@example.com:hunter2\n", encoding="utf-8")
    for args in (["scan", "--json", str(posting)], ["source", "list", "--json"]):
        modules = _imported(args)
        assert "leaksentinel.cli.main" in modules and "core.db" in modules, args  # the parse works
        loaded = sorted(m for m in modules if m.split(".")[0] in {"scrapy", "twisted", "playwright"})
        assert loaded == [], (args, loaded[:10])
