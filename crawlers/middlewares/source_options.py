"""Per-source request options: the proxy and browser rendering a source was added with.

Why a middleware: every spider gets them without knowing about them; a source added with
``--proxy`` or ``--render`` has every one of its requests go that way.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request, Spider

__all__ = ["SourceOptionsMiddleware"]


class SourceOptionsMiddleware:
    @classmethod
    def from_crawler(cls, crawler: Any) -> SourceOptionsMiddleware:
        return cls()

    def process_request(self, request: Request, spider: Spider) -> None:
        options: dict[str, Any] = getattr(spider, "options", {}) or {}
        proxy = options.get("proxy")
        if proxy and "proxy" not in request.meta:
            request.meta["proxy"] = proxy
        if options.get("render") and not request.url.endswith("/robots.txt"):
            request.meta.setdefault("playwright", True)
            # The page's WebSockets are not routed through the browser guard: refuse them all.
            request.meta.setdefault(
                "playwright_page_init_callback", "crawlers.browserguard.refuse_websockets"
            )
        return None
