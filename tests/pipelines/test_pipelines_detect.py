"""Detection reports when it could not read a whole posting within its time limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.db import open_database
from core.hashing import load_or_create_key
from core.settings import load_settings
from pipelines.detection import engine
from pipelines.detection.engine import Detector


def test_a_posting_read_to_the_end_is_not_partial() -> None:
    settings = load_settings()
    detector = Detector.from_database(open_database(settings), load_or_create_key(settings.key_path))
    assert detector.detect("a@b.example:pw\n" * 1000).partial is False


def test_hitting_the_time_limit_is_reported(monkeypatch: pytest.MonkeyPatch, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(engine, "DEADLINE_BASE_S", 0.0)
    monkeypatch.setattr(engine, "DEADLINE_PER_MB_S", 0.0)
    settings = load_settings()
    detector = Detector.from_database(open_database(settings), load_or_create_key(settings.key_path))
    assert detector.detect("a@b.example:pw\n" * 1000).partial is True
    big = tmp_path / "big.txt"
    big.write_text("x@y.example:pw\n" * 1000)
    result = cli("scan", str(big))
    assert result.code == 0 and "time limit" in result.err
