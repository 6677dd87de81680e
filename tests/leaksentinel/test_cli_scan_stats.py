"""`scan --stats`: what a corpus costs, and whether it stays on the native scanner's fast path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.detection import fastscan


def _stats(err: str) -> dict[str, int]:
    match = re.search(r"lines handed to Python: (\d+) \(read by extract.py: (\d+)\)", err)
    assert match, err
    return {"deferred": int(match.group(1)), "python": int(match.group(2))}


@pytest.mark.skipif(not fastscan.native_available(), reason="the native scanner did not build")
def test_scan_stats_count_the_lines_handed_back_to_python(cli: object, tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("".join(f"user{i}@example.com:hunter{i}\n" for i in range(200)), encoding="utf-8")
    # Greek letters are not read natively (Latin-1, Cyrillic, kana and Hangul are): each line goes back.
    accented = tmp_path / "greek.txt"
    accented.write_text(
        "".join(f"Γιώργος Παπαδόπουλος {i} giorgos{i}@example.com\n" for i in range(50)), encoding="utf-8"
    )
    ascii_run = cli("scan", str(plain), "--stats")  # type: ignore[operator]
    assert ascii_run.code == 0 and "scanned 1 posting(s)" in ascii_run.err and "MB/s" in ascii_run.err
    assert _stats(ascii_run.err)["deferred"] == 0
    mixed = cli("scan", str(plain), str(accented), "--stats", "--json")  # type: ignore[operator]
    assert mixed.code == 0 and "scanned 2 posting(s)" in mixed.err
    assert _stats(mixed.err)["deferred"] >= 50
    assert cli("scan", str(plain)).err == ""  # type: ignore[operator]  # no stats unless asked
