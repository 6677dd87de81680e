"""Progress of a crawl run for the person watching ``leaksentinel crawl`` (pages, postings, matches).

Why a file: the run is a child process whose stderr is Scrapy's log; the parent polls a small JSON file
instead of parsing log lines. Switched on by ``LEAKSENTINEL_CRAWL_PROGRESS_FILE``.
"""

from __future__ import annotations

import os
from typing import Any

from scrapy.exceptions import NotConfigured

__all__ = ["CrawlProgress"]


class CrawlProgress:
    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlProgress:
        if not os.environ.get("LEAKSENTINEL_CRAWL_PROGRESS_FILE"):
            raise NotConfigured
        return cls()
