"""Usage errors end in exit 2 and one line with a hint, never a traceback; ``--version`` prints the version.

Why both in-process and as a subprocess: the in-process runner goes through ``main()``, the subprocess through
``python -m leaksentinel`` exactly as a script would (Typer's bundled click raised past the old entry point).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leaksentinel.cli.main import version

ROOT = Path(__file__).resolve().parents[2]

USAGE_CASES: list[tuple[list[str], str]] = [
    (["alerts", "lst"], "no such command 'lst'"),
    (["alerts", "list", "--severity", "high"], "no such option: --severity"),
    (["tenant", "add"], "missing argument"),
    (["--bogus"], "no such option: --bogus"),
    (["search", "x", "--limit", "many"], "invalid value for '--limit'"),
    (["tenant", "add", "acme", "surplus"], "unexpected extra argument"),
    (["nosuchcommand"], "no such command 'nosuchcommand'"),
]


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKSENTINEL_")}
    env["LEAKSENTINEL_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "leaksentinel", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line_with_hint(stderr: str, expected: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("leaksentinel: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "(try: leaksentinel" in lines[0] and lines[0].endswith("--help)"), lines[0]


@pytest.mark.parametrize(("args", "expected"), USAGE_CASES)
def test_usage_error_in_process_is_exit_2_one_line(cli: Any, args: list[str], expected: str) -> None:
    result = cli(*args)
    assert result.code == 2, result
    assert result.out == ""
    _one_line_with_hint(result.err, expected)


def test_usage_errors_through_python_dash_m(tmp_path: Path) -> None:
    """One subprocess per case would cost seconds each; the three of the issue, as scripts see them."""
    for args, expected in USAGE_CASES[:3]:
        proc = _run(tmp_path / "home", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        _one_line_with_hint(proc.stderr, expected)


def test_no_such_command_names_the_group_in_the_hint(cli: Any) -> None:
    result = cli("alerts", "lst")
    assert "did you mean 'list'" in result.err
    assert "(try: leaksentinel alerts --help)" in result.err


def test_version_in_process_and_subprocess(cli: Any, tmp_path: Path) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"leaksentinel {version()}"
    assert version() == "0.1.0"
    proc = _run(tmp_path / "home", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "leaksentinel 0.1.0"
    assert proc.stderr == ""


def test_group_without_command_shows_help_and_exits_2(cli: Any) -> None:
    result = cli("alerts")
    assert result.code == 2
    assert "Usage: leaksentinel alerts" in result.err
    assert "Traceback" not in result.err


def test_bad_input_from_a_command_is_still_exit_2(cli: Any) -> None:
    result = cli("alerts", "list", "--status", "bogus")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1


def test_error_lines_never_carry_terminal_escapes(cli: Any) -> None:
    """A name pasted with an escape sequence is echoed escaped: the error cannot drive the terminal."""
    result = cli("source", "remove", "\x1b[2Jx\x07")
    assert result.code == 2
    line = result.err.strip()
    assert "\x1b" not in line and "\x07" not in line
    assert "\\x1b[2Jx\\x07" in line
