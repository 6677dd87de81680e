"""A posting that fails in any item pipeline stage fails the run, so the cursor stays before it.

Why: the store stage reports its own failures (pipelines.store), but a posting can also be lost
earlier, when normalising or detecting raises (the record lookup reads the database, which may be
down). Scrapy logs such an error and moves on, and the run would end ``ok`` with the cursor past a
posting that was never stored. This extension counts it as a posting not stored (the same stats the
store stage sets, which crawlers.run reports and crawlers.job turns into a failed run) and stops the
crawl; the next run fetches it again. A deliberate ``DropItem`` (an empty or oversized page) is not
a loss and is not counted.
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from twisted.python.failure import Failure

__all__ = ["STORE_ERROR_STAT", "STORE_FAILED_STAT", "LostItems"]

STORE_FAILED_STAT = "leaksentinel/store_failed"
STORE_ERROR_STAT = "leaksentinel/store_error"


class LostItems:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> LostItems:
        ext = cls(crawler)
        crawler.signals.connect(ext.item_error, signal=signals.item_error)
        return ext

    def item_error(self, item: Any, response: Any, spider: Any, failure: Failure) -> None:
        stats = self.crawler.stats
        url = getattr(item, "url", None) or getattr(response, "url", "?")
        exc = failure.value
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:240]
        message = f"posting {url} could not be processed ({reason}); the cursor stays for the next run"
        if stats is not None:
            stats.inc_value(STORE_FAILED_STAT)
            if stats.get_value(STORE_ERROR_STAT) is None:
                stats.set_value(STORE_ERROR_STAT, message)
        if not self.closing and self.crawler.engine is not None:
            self.closing = True
            self.crawler.engine.close_spider(spider, "store_failed")
