"""The tip line: a reported page or text goes through the same pipeline and raises the same alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leaksentinel.sim import Underground


def _register(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme")
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email\nk1,victim@acme.example\n")
    (tmp_path / "c.jsonl").write_text(cli("hash", "--csv", str(csv_path), "--key-column", "id").out)
    assert cli("watch", "add", "--tenant", "acme", "--records", str(tmp_path / "c.jsonl")).code == 0


def test_reported_text_raises_an_alert(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _register(cli, tmp_path)
    result = cli(
        "report",
        "--text",
        "-",
        "--note",
        "seen on a forum",
        "--json",
        stdin="fresh leak\nvictim@acme.example:pass123\n",
    )
    assert result.code == 0, result.err
    out = result.json()
    assert out["new"] and out["findings"] >= 1 and out["alerts"] == 1
    alerts = cli("alerts", "list", "--json").jsonl()
    assert alerts[0]["source"] == "tips" and alerts[0]["url"].startswith("tip:")
    assert cli("source", "list", "--json").jsonl() == []  # implicit sources are not crawled sources


@pytest.mark.slow
def test_reported_page_is_crawled_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _register(cli, tmp_path)
    with Underground(seed=1, n_noise=1) as site:
        paste = site.pastes[0]
        result = cli("report", f"{site.base_url}/api_scrape_item.php?i={paste.key}", "--json")
        assert result.code == 0, result.err
        assert result.json()["postings"] == 1
    assert json.loads(result.lines[-1])["reported"].startswith("http://127.0.0.1")


def test_reports_are_checked(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("report", "ftp://x.example/").code == 2
    assert cli("report", "--text", "-", stdin="   ").code == 2
    assert cli("report").code == 2
