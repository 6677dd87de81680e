"""The progress extension writes a real crawl's counters to the file the CLI polls, while it runs and at close.

Why through ``run_crawl``: the extension lives in the crawl's child process and is found only through the
environment ``run_crawl`` passes on, which is exactly how ``leaksentinel crawl`` switches it on.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from core.db import open_database
from core.settings import load_settings
from crawlers.extensions.progress import ENV, progress_from_stats, read_progress
from crawlers.job import run_crawl
from leaksentinel.actions.sources import add_source
from leaksentinel.sim import Underground


def test_progress_file_follows_the_run_and_ends_with_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    target = tmp_path / "progress.json"
    monkeypatch.setenv(ENV, str(target))
    settings = load_settings()
    db = open_database(settings)
    seen: list[dict[str, object]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            snapshot = read_progress(target)
            if snapshot is not None and snapshot not in seen:
                seen.append(snapshot)

    with Underground(seed=3, n_noise=4) as site:
        # A delay between requests makes the run last a few ticks of the extension's 0.5 s clock.
        add_source(db, "pb", "pastebin", site.base_url, options={"delay": 0.15})
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            summary = run_crawl(settings, "pb")
        finally:
            stop.set()
            watcher.join(timeout=2)
    assert summary["status"] == "ok" and summary["fetched"] > 3
    final = json.loads(target.read_text(encoding="utf-8"))
    assert final["finished"] is True and final["finish_reason"] == "finished"
    for key in ("fetched", "postings", "new", "matches", "alerts", "errors"):
        assert final[key] == summary[key], key
    running = [s for s in seen if not s["finished"]]
    assert running, seen  # written while the run went on, not only at the end
    assert any(0 < int(s["fetched"]) < summary["fetched"] for s in running), running  # type: ignore[call-overload]
    assert not list(tmp_path.glob(".progress.json.*.tmp"))  # atomic replace leaves no temporary file


def test_without_the_variable_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scrapy.exceptions import NotConfigured

    from crawlers.extensions.progress import CrawlProgress

    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(NotConfigured):
        CrawlProgress.from_crawler(object())


def test_counters_match_the_run_summary() -> None:
    from crawlers.run import summarize

    stats = {
        "downloader/response_count": 7,
        "leaksentinel/postings": 5,
        "leaksentinel/new": 4,
        "leaksentinel/matches": 3,
        "leaksentinel/alerts": 2,
        "log_count/ERROR": 1,
        "leaksentinel/errors": 1,
    }
    summary = summarize(stats, 1.0, "x")
    assert progress_from_stats(stats) == {k: summary[k] for k in progress_from_stats(stats)}
    assert read_progress("/nonexistent/progress.json") is None
