"""The base of every source spider: reads its source row and keeps its incremental cursor.

Why: a run must fetch only what is new since the last run; the spider reads the cursor saved by the
previous run and hands back an updated one, which crawlers.run writes when the run succeeds.
"""

from __future__ import annotations

from typing import Any

import scrapy

__all__ = ["SourceSpider"]


class SourceSpider(scrapy.Spider):
    """Spiders are started with ``-a source_url=... -a source_name=... -a cursor=<json>``."""

    def __init__(
        self,
        source_name: str = "",
        source_url: str = "",
        cursor: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_name = source_name
        #: The URL exactly as the source was added (a feed at ``/feed/`` keeps its slash).
        self.source_url = source_url
        #: The URL as a base for API paths (``base_url + "/latest.json"``).
        self.base_url = source_url.rstrip("/")
        self.cursor: dict[str, Any] = dict(cursor or {})
        self.options: dict[str, Any] = dict(options or {})
        self.new_cursor: dict[str, Any] = dict(self.cursor)

    def count(self, key: str, n: int = 1) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"leaksentinel/{key}", n)
