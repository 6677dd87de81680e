"""The walk every HTML forum spider shares: a listing of topics, each topic's pages, a bounded cursor.

Why one walk: forum listings (phpBB, XenForo) show per topic what changes when someone replies (reply
count, last post), so a run opens only topics whose row changed since the previous run, and resumes each
at the last page it read (forums append replies; earlier pages stay as they were). If that page is gone
(posts deleted, topic split or moved), the topic is read again from its start. Listings are sorted by
last post, so paging stops at the first page where nothing changed. A topic is recorded only once it was
read to its end, so a failed run reads it again.

A platform's spider says where things are: `listing_links`, `row_activity`, `next_href`, `topic_title`
and `posts`, and how its URLs are normalised (`canonical_url`, `topic_key`).

Cursor: ``{CURSOR_KEY: {KEY: {"sig": SIGNATURE, "last": URL, "at": T}}}`` where KEY is the platform's
topic key, ``last`` the last topic page read, ``at`` the run time (the newest `max_topics` are kept).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.html_text import one_line, proxy_meta

__all__ = ["ForumListingSpider"]


class ForumListingSpider(SourceSpider):
    """A listing → topic pages spider with a resumable per-topic cursor; subclasses add the markup."""

    #: The cursor's key for the remembered topics (``"topics"``, ``"threads"``).
    cursor_key: ClassVar[str] = "topics"
    #: What the platform calls a topic, for log lines and the ``<noun>_url`` request meta.
    noun: ClassVar[str] = "topic"
    #: How many topics the cursor keeps (the most recently read).
    max_topics: ClassVar[int] = 5000

    def __init__(self, source_url: str = "", **kwargs: Any) -> None:
        super().__init__(source_url=source_url, **kwargs)
        self.start_url = source_url or self.source_url
        previous = self.cursor.get(self.cursor_key)
        self.known: dict[str, dict[str, Any]] = dict(previous) if isinstance(previous, dict) else {}
        self.run_at = int(time.time())
        self.new_cursor = {self.cursor_key: dict(self.known)}

    # -- what a platform says ------------------------------------------------------------------
    def canonical_url(self, url: str) -> str:
        """The URL every run sees for the same page (no fragment, no session id)."""
        raise NotImplementedError

    def topic_key(self, url: str) -> str:
        """The cursor key of a topic, the same for each of its pages."""
        raise NotImplementedError

    def listing_links(self, response: TextResponse) -> Iterator[tuple[str, Any, Selector | None]]:
        """Per topic on a listing page: its link's href (never empty), the link, and the topic's row."""
        raise NotImplementedError

    def row_activity(self, row: Selector) -> tuple[str, str, str]:
        """What a listing row says of a topic's activity: reply count, last post's link and its time."""
        raise NotImplementedError

    def next_href(self, response: TextResponse) -> str | None:
        """The link to the next page of a listing or of a topic."""
        raise NotImplementedError

    def topic_title(self, response: TextResponse) -> str:
        """The topic's title as its page shows it ("" when it does not)."""
        raise NotImplementedError

    def posts(self, response: TextResponse, page_url: str, title: str) -> Iterator[PostingDraft]:
        """The postings on a topic page."""
        raise NotImplementedError

    # -- the walk ------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            self.canonical_url(self.start_url), callback=self.parse_listing, meta=proxy_meta(self.options)
        )

    def parse_listing(self, response: Response) -> Iterator[Any]:
        if not self.is_text(response, "listing"):
            return
        changed = 0
        for href, link, row in self.listing_links(response):
            url = self.canonical_url(response.urljoin(href))
            key = self.topic_key(url)
            sig = self.signature(row, response)
            before = self.known.get(key)
            if before and sig and before.get("sig") == sig:
                continue
            changed += 1
            resume = str(before["last"]) if before and before.get("last") else url
            yield response.follow(
                resume,
                callback=self.parse_item,
                errback=self.resume_failed,
                cb_kwargs={"key": key, "sig": sig, "title": one_line(link)},
                meta={**proxy_meta(self.options), f"{self.noun}_url": url},
            )
        if self.known and not changed:
            self.logger.info("nothing changed on %s: older listing pages are not read", response.url)
            return
        nxt = self.next_href(response)
        if nxt:
            yield response.follow(
                self.canonical_url(response.urljoin(nxt)),
                callback=self.parse_listing,
                meta=proxy_meta(self.options),
            )

    def signature(self, row: Selector | None, response: TextResponse) -> str:
        """What changes in a listing row when someone replies ("" when the row says nothing of it)."""
        if row is None:
            return ""
        replies, link, when = self.row_activity(row)
        if link:
            link = self.canonical_url(response.urljoin(link))
        sig = f"{replies}|{link}|{when}"
        return "" if sig == "||" else sig

    def parse_item(self, response: Response, key: str, sig: str, title: str) -> Iterator[Any]:
        """A topic page: its postings, then the next page, or (on the last page) the cursor entry."""
        if not self.is_text(response, self.noun):
            return
        page_url = self.canonical_url(response.url)
        title = self.topic_title(response) or title or (response.css("title::text").get() or "").strip()
        yield from self.posts(response, page_url, title)
        nxt = self.next_href(response)
        if nxt:
            yield response.follow(
                self.canonical_url(response.urljoin(nxt)),
                callback=self.parse_item,
                cb_kwargs={"key": key, "sig": sig, "title": title},
                meta=proxy_meta(self.options),
            )
            return
        # The topic is read to its end: only now is it recorded, so a failed run reads it again.
        self._remember(key, {"sig": sig, "last": page_url, "at": self.run_at})

    def resume_failed(self, failure: Failure) -> Iterator[Any]:
        """The page a topic was left at is gone: read the topic from its start."""
        request = getattr(failure, "request", None)
        first = request.meta.get(f"{self.noun}_url") if request is not None else None
        if request is None or not first or self.canonical_url(request.url) == first:
            self.logger.warning("%s page failed: %s", self.noun, failure.getErrorMessage())
            return
        yield scrapy.Request(
            first,
            callback=self.parse_item,
            cb_kwargs=dict(request.cb_kwargs),
            meta=proxy_meta(self.options),
            dont_filter=True,
        )

    def _remember(self, key: str, entry: dict[str, Any]) -> None:
        topics: dict[str, Any] = self.new_cursor.setdefault(self.cursor_key, {})
        topics.pop(key, None)
        topics[key] = entry
        if len(topics) > self.max_topics:
            newest = sorted(topics.items(), key=lambda kv: int(kv[1].get("at", 0) or 0))[-self.max_topics :]
            self.new_cursor[self.cursor_key] = dict(newest)
