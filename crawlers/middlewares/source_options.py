"""Per-source request options: the proxy and browser rendering a source was added with.

Why a middleware: every spider gets them without knowing about them; a source added with
``--proxy`` or ``--render`` has every one of its requests go that way.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, Spider

from core.fetch_record import MAX_SCREENSHOT_BYTES, SCREENSHOT_KEY

__all__ = ["SourceOptionsMiddleware", "full_page_screenshot"]

log = logging.getLogger(__name__)

#: A screenshot that takes longer is skipped (the page is still read).
SCREENSHOT_TIMEOUT_MS = 15_000


async def full_page_screenshot(page: Any) -> bytes | str:
    """Page method of rendered requests: the full page as PNG for the evidence package, or a note saying
    why there is none (never an error: a page that cannot be photographed is still read)."""
    try:
        shot: bytes = await page.screenshot(full_page=True, type="png", timeout=SCREENSHOT_TIMEOUT_MS)
    except Exception as exc:
        log.warning("no screenshot of %s: %s", str(page.url)[:200], exc)
        return f"not kept: the screenshot failed ({type(exc).__name__})"
    if len(shot) > MAX_SCREENSHOT_BYTES:
        return f"not kept: the screenshot was {len(shot)} bytes (more than {MAX_SCREENSHOT_BYTES})"
    return shot


class SourceOptionsMiddleware:
    def __init__(self, crawler: Any = None) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> SourceOptionsMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """``spider`` only from a Scrapy that still passes it: the crawler's spider otherwise (Scrapy 2.14
        deprecated the argument, and will stop passing it)."""
        spider = spider if spider is not None else getattr(self.crawler, "spider", None)
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
            if "playwright_page_methods" not in request.meta:
                from scrapy_playwright.page import PageMethod  # only rendered sources need Playwright

                request.meta["playwright_page_methods"] = {SCREENSHOT_KEY: PageMethod(full_page_screenshot)}
        return None
