"""Progress of a crawl run for the person watching ``leaksentinel crawl`` (pages, postings, matches).

Why a file: the run is a child process whose stderr is Scrapy's log; the parent polls a small JSON file
instead of parsing log lines. Switched on by ``LEAKSENTINEL_CRAWL_PROGRESS_FILE``: the run's counters are
written there every ``INTERVAL_S`` and once more when the spider closes, each time by an atomic replace
(a reader never sees half a file).

Scrapy and Twisted are imported by the extension's own methods: the CLI reads ``ENV`` and
``read_progress`` from here, and every ``leaksentinel`` command would otherwise load Scrapy (~0.2 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twisted.internet import task

__all__ = ["ENV", "INTERVAL_S", "CrawlProgress", "progress_from_stats", "read_progress"]

ENV = "LEAKSENTINEL_CRAWL_PROGRESS_FILE"
INTERVAL_S = 0.5


def progress_from_stats(stats: dict[str, Any]) -> dict[str, int]:
    """The counters of the run summary (crawlers.run.summarize), as far as the run has got."""
    return {
        "fetched": int(stats.get("downloader/response_count", 0)),
        "postings": int(stats.get("leaksentinel/postings", 0)),
        "new": int(stats.get("leaksentinel/new", 0)),
        "matches": int(stats.get("leaksentinel/matches", 0)),
        "alerts": int(stats.get("leaksentinel/alerts", 0)),
        "errors": int(stats.get("log_count/ERROR", 0)) + int(stats.get("leaksentinel/errors", 0)),
    }


def read_progress(path: Path | str) -> dict[str, Any] | None:
    """The last progress written at ``path``, or None before the first write (or if it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class CrawlProgress:
    def __init__(self, crawler: Any, path: Path, interval_s: float = INTERVAL_S) -> None:
        self.crawler = crawler
        self.path = path
        self.interval_s = interval_s
        self.started = time.monotonic()
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlProgress:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        target = os.environ.get(ENV)
        if not target:
            raise NotConfigured
        ext = cls(crawler, Path(target))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        self.started = time.monotonic()
        self.loop = task.LoopingCall(self.write)
        self.loop.start(self.interval_s, now=True)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.write(finished=True, reason=reason)

    def snapshot(self, *, finished: bool = False, reason: str | None = None) -> dict[str, Any]:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        out: dict[str, Any] = progress_from_stats(stats)
        out["seconds"] = round(time.monotonic() - self.started, 1)
        out["finished"] = finished
        if reason is not None:
            out["finish_reason"] = reason
        return out

    def write(self, *, finished: bool = False, reason: str | None = None) -> None:
        """Atomic replace; a failure to write (a full disk) never stops the crawl."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.snapshot(finished=finished, reason=reason)), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
