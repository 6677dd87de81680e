"""The base of every source spider: reads its source row and keeps its incremental cursor.

Why: a run must fetch only what is new since the last run; the spider reads the cursor saved by the
previous run and hands back an updated one, which crawlers.run writes when the run succeeds. The base
also holds what every spider does the same way with a failed or unusable response: count it as an error
once (RetryMiddleware already counted the ones it gave up on), and keep a failed item for the next run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeGuard

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from core.fetch_record import from_response
from core.posting import PostingDraft

__all__ = ["GONE", "SourceSpider", "as_int", "failure_status", "logged_by_retry", "positive_int"]

#: HTTP statuses that mean an item is gone for good: it is not tried again.
GONE = frozenset({404, 410})


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

    def is_text(self, response: Response, what: str) -> TypeGuard[TextResponse]:
        """Whether the response is a text page; when not, logs ``<what> is not a text page`` as an error."""
        if isinstance(response, TextResponse):
            return True
        self.logger.error("%s is not a text page: %s", what, response.url)
        self.count("errors")
        return False

    def page_posting(
        self,
        response: TextResponse,
        url: str,
        text: str,
        title: str | None = None,
        author: str | None = None,
        published: datetime | None = None,
    ) -> PostingDraft:
        """A posting read from a page: the page's body is its raw form, in the page's encoding."""
        return PostingDraft(
            source=self.source_name,
            url=url,
            raw=response.body,
            text=text,
            encoding=response.encoding,
            title=title or None,
            author=author or None,
            published=published,
            fetch=from_response(response),
        )

    def keep_old_cursor(self, reason: str, *validators: str) -> None:
        """A run cut short (page budget, shutdown) keeps the old cursor: what it queued but never read
        must not count as seen; without its `validators` (ETag...), the next run reads the listing again."""
        if reason != "finished":
            self.new_cursor = {**self.cursor, **dict.fromkeys(validators)}

    def count_failure(self, request: scrapy.Request) -> None:
        """Count a failed request as an error, unless RetryMiddleware gave up on it (and counted it)."""
        if not logged_by_retry(request, self.settings.getint("RETRY_TIMES")):
            self.count("errors")

    def keep_for_retry(
        self, failure: Failure, retry: dict[str, dict[str, Any]], url_field: str, what: str, max_tries: int
    ) -> None:
        """An errback's bookkeeping for an item queued as ``cb_kwargs["entry"]``: log the failure and keep
        the entry in `retry` (keyed by its `url_field`) for the next run, unless it is gone or was tried
        `max_tries` times. A transient failure counts as an error."""
        request = failure.request  # type: ignore[attr-defined]
        entry: dict[str, Any] = request.cb_kwargs["entry"]
        gone = failure_status(failure) in GONE
        tries = int(entry.get("tries", 0)) + 1
        self.logger.warning("%s %s failed: %s", what, entry[url_field], failure.getErrorMessage())
        if not gone:
            self.count_failure(request)
        if gone or tries >= max_tries:
            retry.pop(entry[url_field], None)
        else:
            retry[entry[url_field]] = {**entry, "tries": tries}


def failure_status(failure: Failure) -> int:
    """The HTTP status of a failure raised by HttpErrorMiddleware, else 0 (DNS, timeout, refused...)."""
    return failure.value.response.status if isinstance(failure.value, HttpError) else 0


def logged_by_retry(request: scrapy.Request, retry_times: int) -> bool:
    """Whether RetryMiddleware gave up on this request, which it logs as an ERROR (already counted)."""
    limit = int(request.meta.get("max_retry_times", retry_times))
    return int(request.meta.get("retry_times", 0)) >= limit


def as_int(value: Any) -> int:
    """An int from a JSON value, or 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def positive_int(value: Any, default: int) -> int:
    """A positive int from an option value, or `default`."""
    number = as_int(value)
    return number if number > 0 else default
