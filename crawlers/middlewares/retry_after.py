"""Honour ``Retry-After`` on 429 and 503: wait as the site asks, then retry (bounded).

Why: paste sites rate-limit scrapers; hammering them gets the deployment banned, and a run that waited
as asked and then got its page is a success, not a failure.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

__all__ = ["RetryAfterMiddleware", "retry_after_seconds"]

log = logging.getLogger(__name__)


def retry_after_seconds(value: str | bytes | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware:
    """Downloader middleware placed before Scrapy's RetryMiddleware."""

    def __init__(
        self, max_wait_s: float, max_times: int, priority_adjust: int = -1, crawler: Any = None
    ) -> None:
        self.crawler = crawler
        self.max_wait_s = max_wait_s
        self.max_times = max_times
        #: Added to the request's priority, as Scrapy's own retries do (RETRY_PRIORITY_ADJUST).
        self.priority_adjust = priority_adjust

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        return cls(
            crawler.settings.getfloat("LEAKSENTINEL_RETRY_AFTER_MAX_S", 120.0),
            crawler.settings.getint("LEAKSENTINEL_RETRY_AFTER_TIMES", 3),
            crawler.settings.getint("RETRY_PRIORITY_ADJUST", -1),
            crawler,
        )

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        """``spider`` only from a Scrapy that still passes it (deprecated since Scrapy 2.14)."""
        if response.status not in (429, 503):
            return response
        spider = spider if spider is not None else getattr(self.crawler, "spider", None)
        logger = spider.logger if spider is not None else log
        delay = retry_after_seconds(response.headers.get(b"Retry-After"))
        if delay is None:
            return response  # Scrapy's RetryMiddleware retries with its own policy
        tries = int(request.meta.get("retry_after_times", 0))
        if tries >= self.max_times or delay > self.max_wait_s:
            logger.warning("giving up on %s: Retry-After %.0f s (try %d)", request.url, delay, tries)
            raise IgnoreRequest(f"Retry-After {delay:.0f} s exceeds the limit")
        logger.info("%s answered %d; waiting %.1f s as asked", request.url, response.status, delay)
        crawler = self.crawler or getattr(spider, "crawler", None)
        if crawler is not None and crawler.stats:
            crawler.stats.inc_value("leaksentinel/retry_after_waits")
        await asyncio.sleep(delay)
        retry = request.replace(dont_filter=True, priority=request.priority + self.priority_adjust)
        retry.meta["retry_after_times"] = tries + 1
        return retry
