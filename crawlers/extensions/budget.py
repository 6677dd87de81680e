"""A per-run byte budget: a run stops (cleanly, keeping its cursor for next time) after reading this many
bytes, so one huge or hostile source cannot eat a crawl worker's bandwidth or disk."""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

__all__ = ["ByteBudget"]


class ByteBudget:
    def __init__(self, crawler: Any, limit: int) -> None:
        self.crawler = crawler
        self.limit = limit
        self.used = 0
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> ByteBudget:
        limit = crawler.settings.getint("LEAKSENTINEL_BYTE_BUDGET", 0)
        if limit <= 0:
            raise NotConfigured
        ext = cls(crawler, limit)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        return ext

    def response_received(self, response: Any, request: Any, spider: Any) -> None:
        self.used += len(response.body)
        if self.used > self.limit and not self.closing:
            self.closing = True
            spider.logger.warning(
                "byte budget of %d reached after %d bytes; stopping this run", self.limit, self.used
            )
            self.crawler.engine.close_spider(spider, "byte_budget")
