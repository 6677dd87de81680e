"""`--help` and docs/ name what CLI-CONTRACT.md lists: `watch add --yara`, the kinds `yara` and `lookalike`
(with its technique), the retro-hunt and its settings, and every built-in secret rule id."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from core.settings import Settings
from pipelines.detection.secrets import DETECTORS

DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = pytest.mark.sqlite_only("help text and docs need no database")


def _help(cli, *args: str) -> str:  # type: ignore[no-untyped-def]
    result = cli(*args, "--help")
    assert result.code == 0, result.err
    return " ".join(result.out.split())  # rich wraps lines: compare words


def test_help_names_yara_lookalike_and_technique(cli) -> None:  # type: ignore[no-untyped-def]
    add = _help(cli, "watch", "add")
    for words in ("--yara", "kind ``lookalike``", "``technique``", "kind ``yara``", "retro-hunt", "--domain"):
        assert words in add, words
    assert "hunted over the stored ones" in add
    scan = _help(cli, "scan")
    for words in (
        "lookalike",
        "technique",
        "yara (``watch``: the rule name)",
        "secret (``watch``: the rule id",
    ):
        assert words in scan, words
    assert "hunt" in _help(cli, "watch")
    assert "stored postings" in _help(cli, "watch", "hunt")


def test_docs_describe_the_kinds_the_retro_hunt_and_every_secret_rule() -> None:
    text = (DOCS / "watches.md").read_text(encoding="utf-8")
    for words in (
        "--yara RULES.yar",
        "`lookalike`",
        "`technique`",
        "`yara`",
        "watch hunt",
        "watch.retro_hunt",
    ):
        assert words in text, words
    names = {f.name for f in fields(Settings)}
    for setting in (
        "yara_retro_max_postings",
        "yara_retro_max_bytes",
        "yara_retro_seconds",
        "yara_retro_inline_seconds",
    ):
        assert setting in names and f"`{setting}`" in text, setting
    for detector in DETECTORS:
        assert f"`{detector.name}`" in text, detector.name
    guide = (DOCS / "security-teams.md").read_text(encoding="utf-8")
    assert "watches.md#retro-hunt-over-stored-postings" in guide
    assert "no\nretro-hunt" not in guide and "(no retro-hunt)" not in guide
