"""Empty-line benchmark: `leaksentinel scan` of 20 MB of newlines with one leak, beside baselines from
the same run.

Why: issue 11 point 8. A posting of 20 MB of newlines with one leak took 181 s because the keyword,
regex and secret stages made Python calls per line. The figures that say it is fixed:
- `scan` (the CLI, a subprocess) of 20 MB of newlines around one leak, a keyword, a regex and a secret;
- the same posting with the newlines removed (the leak alone: start-up and the fixed costs);
- 20 MB of ordinary dump lines (what 20 MB of real text costs through the same command);
- the three stages on the newlines, whole text (today) beside the per-line reading they did before
  (kept as the reference of the differential tests), on a smaller slice unless ``--per-line-mb`` says.

    python bench/newlines.py              # 20 MB; per-line baseline on 2 MB
    python bench/newlines.py --mb 5 --per-line-mb 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the per-line reference the differential tests compare with
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pipelines"))

from test_pipelines_lines import _old_keywords, _old_regexes, _old_secrets

from pipelines.detection.keywords import KeywordMatcher
from pipelines.detection.regexes import RegexMatcher
from pipelines.detection.secrets import find_secrets

MB = 1_000_000
TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
LEAK = f"jane.doe@acme.example:hunter2\nproject falcon is on\nticket ACME-123456\n{TOKEN}\n"
KEYWORD, REGEX = "project falcon", r"ACME-\d{6}"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LEAKSENTINEL_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "leaksentinel", *args], env=env, capture_output=True, text=True, check=True
    )


def _setup(home: Path, work: Path) -> None:
    _cli(home, "tenant", "add", "acme", "--domain", "acme.example")
    csv_path = work / "customers.csv"
    csv_path.write_text("id,email\nc-1,jane.doe@acme.example\n", encoding="utf-8")
    records = work / "customers.jsonl"
    records.write_text(_cli(home, "hash", "--csv", str(csv_path), "--key-column", "id").stdout)
    _cli(home, "watch", "add", "--tenant", "acme", "--records", str(records))
    _cli(home, "watch", "add", "--tenant", "acme", "--keyword", KEYWORD)
    _cli(home, "watch", "add", "--tenant", "acme", "--regex", REGEX)


def _scan(home: Path, path: Path) -> tuple[float, float, list[str]]:
    """(wall s, child CPU s, finding kinds) of one `leaksentinel scan --json`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = _cli(home, "scan", str(path), "--json")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    kinds = sorted(json.loads(line)["kind"] for line in out.stdout.splitlines() if line.strip())
    if "time limit" in out.stderr:
        kinds.append("PARTIAL")
    return wall, cpu, kinds


def _dump_lines(size: int) -> str:
    """Ordinary combo-list lines, no registered value among them."""
    lines, total, i = [], 0, 0
    while total < size:
        line = f"user{i}@mail{i % 97}.example:pass{i * 7919 % 100000}|{i % 10}\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines)


def _newlines(size: int) -> str:
    half = "\n" * (size // 2)
    return half + LEAK + half


def _stages_whole(text: str) -> None:
    KeywordMatcher([(1, 1, KEYWORD)]).find(text)
    RegexMatcher([(1, 1, REGEX)]).find(text)
    find_secrets(text)


def _stages_per_line(text: str) -> None:
    """The stages as they were (per-line reading, kept in tests/pipelines/test_pipelines_lines.py)."""
    _old_keywords(KeywordMatcher([(1, 1, KEYWORD)]), text)
    _old_regexes([(1, 1, REGEX)], text)
    _old_secrets(text)


def _cpu(run: Callable[[], object]) -> float:
    started = time.process_time()
    run()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=20.0, help="size of the newline posting (default 20)")
    parser.add_argument("--per-line-mb", type=float, default=2.0, help="size for the per-line baseline")
    args = parser.parse_args()
    size, small = int(args.mb * MB), int(args.per_line_mb * MB)
    with tempfile.TemporaryDirectory(prefix="ls-bench-newlines-") as tmp:
        work = Path(tmp)
        home = work / "home"
        _setup(home, work)
        files = {
            f"{args.mb:g} MB of newlines + leak": _newlines(size),
            "leak alone (newlines removed)": LEAK,
            f"{args.mb:g} MB of dump lines + leak": _dump_lines(size) + LEAK,
        }
        print(f"leaksentinel scan --json (subprocess, start-up included), Python {sys.version.split()[0]}")
        print(f"{'posting':38s} {'wall s':>8s} {'CPU s':>8s}  findings")
        for name, text in files.items():
            path = work / "posting.txt"
            path.write_text(text, encoding="utf-8")
            wall, cpu, kinds = _scan(home, path)
            print(f"{name:38s} {wall:8.2f} {cpu:8.2f}  {','.join(kinds)}")
        print()
        print("keyword + regex + secret stages in process (CPU s):")
        text = _newlines(small)
        whole_small, per_line = _cpu(lambda: _stages_whole(text)), _cpu(lambda: _stages_per_line(text))
        print(
            f"  {args.per_line_mb:g} MB of newlines: whole text {whole_small:.3f}   per line {per_line:.3f}"
        )
        big = _newlines(size)
        whole_big = _cpu(lambda: _stages_whole(big))
        print(
            f"  {args.mb:g} MB of newlines: whole text {whole_big:.3f}   "
            f"per line ~{per_line * size / max(small, 1):.1f} (scaled from {args.per_line_mb:g} MB)"
        )


if __name__ == "__main__":
    main()
