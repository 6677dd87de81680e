"""``leaksentinel hash`` tells what it refused, ``--strict`` makes that an error, and hostile input is bounded.

Why: a company registers what ``hash`` prints; a value silently dropped (a card failing Luhn, a
malformed email) is a record it believes watched but never matched.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leaksentinel import company_hash
from leaksentinel.company_hash import Refusals, hash_csv

ROOT = Path(__file__).resolve().parents[2]
GOOD_CARD = "4111111111111111"
BAD_CARD = "4111111111111112"  # fails Luhn

MIXED = (
    "id,email,card\n"
    f"r1,a@b.example,{GOOD_CARD}\n"  # line 2: both valid
    f"r2,not-an-email,{BAD_CARD}\n"  # line 3: nothing valid
    "r3,c@d.example,1234\n"  # line 4: card refused
    f"r4,e@f.example,{BAD_CARD}\n"  # line 5: card refused
)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_refused_values_are_counted_by_type_with_line_numbers(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(MIXED, encoding="utf-8")
    result = cli("hash", "--csv", str(path), "--key-column", "id")
    assert result.code == 0, result.err
    rows = result.jsonl()
    assert [r["record_key"] for r in rows] == ["r1", "r3", "r4"]
    assert all(r["fields"] for r in rows)  # never "fields": {}
    line = _one_line(result.err)
    assert "refused 4 invalid values" in line
    assert "card 3: lines 3, 4, 5" in line
    assert "email 1: line 3" in line
    assert "1 row with no valid value left out (line 3)" in line


def test_strict_refuses_the_input_before_printing_anything(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(MIXED, encoding="utf-8")
    result = cli("hash", "--csv", str(path), "--key-column", "id", "--strict")
    assert result.code == 2
    assert result.out == ""
    line = _one_line(result.err)
    assert "card 3: lines 3, 4, 5" in line and "(--strict)" in line
    clean = tmp_path / "clean.csv"
    clean.write_text(f"id,email,card\nr1,a@b.example,{GOOD_CARD}\n", encoding="utf-8")
    ok = cli("hash", "--csv", str(clean), "--key-column", "id", "--strict")
    assert ok.code == 0 and ok.err == ""
    assert len(ok.jsonl()) == 1


def test_a_row_of_only_blank_cells_beside_its_key_is_reported(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,email\nr1,\nr2,x@y.example\n", encoding="utf-8")
    result = cli("hash", "--csv", str(path), "--key-column", "id")
    assert [r["record_key"] for r in result.jsonl()] == ["r2"]
    assert "1 row with no valid value left out (line 2)" in result.err
    assert cli("hash", "--csv", str(path), "--key-column", "id", "--strict").code == 2


def test_default_record_keys_do_not_shift_when_a_row_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("email\nbroken\nx@y.example\n", encoding="utf-8")
    refusals = Refusals()
    rows = list(hash_csv(path, b"k" * 32, refusals=refusals))
    assert [r["record_key"] for r in rows] == ["2"]  # the second data row keeps its number
    assert refusals.as_dict()["rows_without_value"] == 1


def test_type_mode_reports_once_and_strict_prints_nothing(cli: Any) -> None:
    values = "a@b.example\nbroken\nc@d.example\nalso broken\n"
    result = cli("hash", "--type", "email", "-", stdin=values)
    assert result.code == 0
    assert [r["record_key"] for r in result.jsonl()] == ["1", "3"]
    assert "email 2: lines 2, 4" in _one_line(result.err)
    strict = cli("hash", "--type", "email", "-", "--strict", stdin=values)
    assert strict.code == 2 and strict.out == ""
    assert "email 2: lines 2, 4" in _one_line(strict.err)


def test_utf8_bom_header_from_excel_is_accepted(cli: Any, tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("email,name\nx@y.example,Jane Doe\n", encoding="utf-8")
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    with_bom = cli("hash", "--csv", str(excel))
    assert with_bom.code == 0, with_bom.err
    assert with_bom.jsonl() == cli("hash", "--csv", str(plain)).jsonl()
    assert set(with_bom.json()["fields"]) == {"email", "name"}
    piped = cli("hash", "--csv", "-", stdin="\ufeff" + plain.read_text())
    assert piped.code == 0, piped.err
    assert piped.jsonl() == with_bom.jsonl()


def test_bom_before_a_key_column_name(cli: Any, tmp_path: Path) -> None:
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbfid,email\nr1,x@y.example\n")
    result = cli("hash", "--csv", str(excel), "--key-column", "id")
    assert result.code == 0, result.err
    assert result.json()["record_key"] == "r1"


@pytest.mark.parametrize("key", ["a\x00b", "a\x01b", "a\x1bb", "a\tb", "a\x85b"])
def test_control_characters_in_record_keys_are_refused(cli: Any, tmp_path: Path, key: str) -> None:
    path = tmp_path / "k.csv"
    path.write_text(f'id,email\nok,x@y.example\n"{key}",z@y.example\n', encoding="utf-8")
    result = cli("hash", "--csv", str(path), "--key-column", "id")
    assert result.code == 2
    assert result.out == ""  # checked before anything is printed
    line = _one_line(result.err)
    assert "line 3" in line
    assert "control character" in line or "NUL" in line


def test_overlong_record_key_is_refused(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_text(f"id,email\n{'k' * 300},x@y.example\n", encoding="utf-8")
    result = cli("hash", "--csv", str(path), "--key-column", "id")
    assert result.code == 2
    assert "longer than 256" in _one_line(result.err)


def _run_bounded(args: list[str], tmp_path: Path, stdin: Any = None) -> subprocess.CompletedProcess[str]:
    """As a subprocess with a 1 GiB address-space cap: an unbounded read would die, not pass."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKSENTINEL_")}
    env["LEAKSENTINEL_HOME"] = str(tmp_path / "home")

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "leaksentinel", *args],
        cwd=ROOT,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=cap,
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    for args in (["hash", "--csv", "/dev/zero"], ["hash", "--type", "email", "/dev/zero"]):
        proc = _run_bounded(args, tmp_path)
        assert proc.returncode == 2, (args, proc.stderr[-500:])
        assert proc.stdout == ""
        assert "longer than" in _one_line(proc.stderr)
    with open("/dev/zero", "rb") as zero:
        proc = _run_bounded(["hash", "--type", "email", "-"], tmp_path, stdin=zero)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "longer than" in _one_line(proc.stderr)


def test_many_short_lines_on_stdin_are_bounded(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input is held for the two passes: its budget counts lines, not only characters."""
    monkeypatch.setattr(company_hash, "MAX_BUFFERED_CHARS", 100_000)
    result = cli("hash", "--csv", "-", stdin="email\n" + "x@y.example\n" * 5_000)
    assert result.code == 2
    assert "to hold in memory" in _one_line(result.err)


def test_a_line_exactly_at_the_bound_is_accepted() -> None:
    lines = list(company_hash.bounded_lines(io.StringIO("a" * 63 + "\n" + "b\n"), "x", max_line=64))
    assert lines == ["a" * 63 + "\n", "b\n"]
