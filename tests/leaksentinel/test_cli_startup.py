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


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter with these arguments, in the project's root; it must succeed."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _imported(args: list[str]) -> set[str]:
    """The modules ``python -m leaksentinel <args>`` imported (from ``-X importtime``)."""
    proc = _python("-X", "importtime", "-m", "leaksentinel", *args)
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stderr, re.MULTILINE))


def test_scan_and_source_list_do_not_load_the_crawler_framework(tmp_path: Path) -> None:
    posting = tmp_path / "posting.txt"
    posting.write_text("user@example.com:hunter2\n", encoding="utf-8")
    for args in (["scan", "--json", str(posting)], ["source", "list", "--json"]):
        modules = _imported(args)
        assert "leaksentinel.cli.main" in modules and "core.db" in modules, args  # the parse works
        loaded = sorted(m for m in modules if m.split(".")[0] in {"scrapy", "twisted", "playwright"})
        assert loaded == [], (args, loaded[:10])


_COUNT_COLLECTIONS = """
import gc, sys
starts = []
gc.callbacks.append(lambda phase, info: starts.append(info["generation"]) if phase == "start" else None)
{load}
loading = len(starts)
print(loading, gc.isenabled(), gc.get_freeze_count())
"""


def _collections_while_loading(load: str) -> tuple[int, bool, int]:
    count, enabled, frozen = _python("-c", _COUNT_COLLECTIONS.format(load=load)).stdout.split()
    return int(count), enabled == "True", int(frozen)


def test_the_commands_load_with_the_collector_paused_then_frozen() -> None:
    """The collector walked the commands' modules ~200 times while they loaded (~0.05 CPU-s), and again
    at every later full collection (~0.06 CPU-s in `scan` of a small file): `boot` spares both."""
    count, enabled, frozen = _collections_while_loading(
        "from leaksentinel.cli.boot import load_main; load_main()"
    )
    assert count == 0 and enabled
    assert frozen > 100_000  # the loaded modules' objects, out of the collector's reach
    # the same import without boot collects many times: the test would see a boot that did nothing
    plain, _, unfrozen = _collections_while_loading("import leaksentinel.cli.main")
    assert plain > 20 and unfrozen == 0


def test_the_console_script_and_python_m_go_through_boot() -> None:
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["leaksentinel"] == "leaksentinel.cli.boot:entry"
    assert "leaksentinel.cli.boot import entry" in (ROOT / "leaksentinel" / "__main__.py").read_text()


_FREEZE_THROUGH_SCAN = """
import gc, sys
{load}
booted = gc.get_freeze_count()
sys.argv = ["leaksentinel", "scan", "--json", {posting!r}]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(booted, gc.get_freeze_count(), file=sys.stderr)
"""


def _freeze_counts_through_scan(load: str, posting: Path, home: Path) -> tuple[int, int]:
    script = _FREEZE_THROUGH_SCAN.format(load=load, posting=str(posting))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=dict(os.environ, LEAKSENTINEL_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after = proc.stderr.split()[-2:]
    return int(before), int(after)


def test_scan_leaves_the_booted_modules_frozen_to_the_end(tmp_path: Path) -> None:
    """`scan` froze its detector for the files and then unfroze everything, the modules boot froze
    too; the interpreter's collections at exit then walked them all (~0.3 CPU-s of a small file's scan)."""
    posting = tmp_path / "posting.txt"
    posting.write_text("user@example.com:hunter2\n", encoding="utf-8")
    booted, after = _freeze_counts_through_scan(
        "from leaksentinel.cli.boot import load_main\nmain = load_main()", posting, tmp_path / "home"
    )
    assert booted > 100_000 and after >= booted
    # a process that froze nothing (a library caller) gets its objects back in the collector's reach
    plain, unfrozen = _freeze_counts_through_scan(
        "from leaksentinel.cli.main import entry as main", posting, tmp_path / "home2"
    )
    assert plain == 0 and unfrozen == 0
