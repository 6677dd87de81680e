"""XenForo 2: a forum listing ``.../forums/NAME.ID/``, its threads and their posts.

Why this shape: each listing row shows the thread's reply count and a link to its latest post, so a run
opens only threads whose row changed since the previous run, and resumes each at the last page it read
(XenForo appends replies; earlier pages stay as they were). Listings are sorted by last message, so paging
stops at the first page where nothing changed. Prefix labels sit in the same title cell as the thread link,
so the link is the one XenForo marks ``data-tp-primary`` (or the cell's last link).

Cursor: ``{"threads": {KEY: {"sig": "<replies>|<latest post link>|<latest time>", "last": URL, "at": T}}}``
where KEY is ``thread-<id>``, ``last`` the last thread page read, ``at`` the run time (newest 5000 kept).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.html_text import html_to_text, parse_datetime, proxy_meta

__all__ = ["XenforoSpider", "thread_key"]

MAX_THREADS = 5000
_THREAD_ID = re.compile(r"/threads/(?:[^/]*\.)?(\d+)(?:/|$)")
_PAGE_SUFFIX = re.compile(r"/(?:page-\d+|unread|latest|post-\d+)/?$")
_POST_ID = re.compile(r"(\d+)$")


def canonical(url: str) -> str:
    """The page URL without fragment (XenForo keeps state in the path, never in a session parameter)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def thread_key(url: str) -> str:
    """``thread-<id>`` for any page of a thread, else the thread URL without its page part."""
    match = _THREAD_ID.search(urlsplit(url).path)
    return f"thread-{match.group(1)}" if match else _PAGE_SUFFIX.sub("/", canonical(url))


def _line(sel: Any) -> str:
    return " ".join(html_to_text(sel).split())


class XenforoSpider(SourceSpider):
    name = "xenforo"

    def __init__(self, source_url: str = "", **kwargs: Any) -> None:
        super().__init__(source_url=source_url, **kwargs)
        start = source_url or self.source_url
        parts = urlsplit(start)
        if parts.path and not parts.path.endswith("/") and not parts.query and "/forums/" in parts.path:
            start = urlunsplit((parts.scheme, parts.netloc, parts.path + "/", "", ""))
        self.start_url = start
        previous = self.cursor.get("threads")
        self.known: dict[str, dict[str, Any]] = dict(previous) if isinstance(previous, dict) else {}
        self.run_at = int(time.time())
        self.new_cursor = {"threads": dict(self.known)}

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(self.start_url, callback=self.parse_listing, meta=proxy_meta(self.options))

    def parse_listing(self, response: Response) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self.logger.error("listing is not a text page: %s", response.url)
            self.count("errors")
            return
        changed = 0
        for cell in response.css(".structItem-title"):
            link = cell.css("a[data-tp-primary]") or cell.css("a[href]")[-1:]
            href = link.attrib.get("href") if link else None
            if not href:
                continue
            url = canonical(response.urljoin(href))
            key = thread_key(url)
            row = cell.xpath(
                "ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' structItem ')][1]"
            )
            sig = self._signature(row[0] if row else None, response)
            before = self.known.get(key)
            if before and sig and before.get("sig") == sig:
                continue
            changed += 1
            resume = str(before["last"]) if before and before.get("last") else url
            yield response.follow(
                resume,
                callback=self.parse_thread,
                errback=self.resume_failed,
                cb_kwargs={"key": key, "sig": sig, "title": _line(link)},
                meta={**proxy_meta(self.options), "thread_url": url},
            )
        if self.known and not changed:
            self.logger.info("nothing changed on %s: older listing pages are not read", response.url)
            return
        nxt = response.css("a.pageNav-jump--next::attr(href)").get()
        if nxt:
            yield response.follow(nxt, callback=self.parse_listing, meta=proxy_meta(self.options))

    def _signature(self, row: Selector | None, response: TextResponse) -> str:
        """What changes when someone replies: the reply count, the latest post's link and time."""
        if row is None:
            return ""
        meta = row.css(".structItem-cell--meta")
        replies = (
            meta.css("dl:first-of-type dd::text").get() or meta.attrib.get("data-replies") or ""
        ).strip()
        latest = row.css(".structItem-cell--latest")
        link = latest.css("a::attr(href)").get() or ""
        when = latest.css("time::attr(datetime)").get() or latest.css("time::attr(data-time)").get() or ""
        if link:
            link = canonical(response.urljoin(link))
        sig = f"{replies}|{link}|{when}"
        return "" if sig == "||" else sig

    def parse_thread(self, response: Response, key: str, sig: str, title: str) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self.logger.error("thread is not a text page: %s", response.url)
            self.count("errors")
            return
        page_url = canonical(response.url)
        heading = response.css("h1.p-title-value")
        # The heading's own text: prefix labels are elements of their own.
        thread_title = " ".join(" ".join(heading.xpath("./text()").getall()).split()) if heading else ""
        thread_title = thread_title or title or (response.css("title::text").get() or "").strip()
        for message in response.css("article.message"):
            ident = message.attrib.get("data-content") or message.attrib.get("id") or ""
            match = _POST_ID.search(ident)
            body = message.css(".message-body .bbWrapper") or message.css(".bbWrapper")
            if not match or not body:
                continue
            text = html_to_text(body[0])
            if not text:
                continue
            author = (
                message.attrib.get("data-author")
                or message.css(".message-name .username::text, .message-name ::text").get()
                or ""
            ).strip()
            stamp = message.css(".message-attribution time.u-dt") or message.css("time.u-dt")
            published = None
            if stamp:
                published = parse_datetime(stamp[0].attrib.get("datetime")) or parse_datetime(
                    stamp[0].attrib.get("data-time")
                )
            yield PostingDraft(
                source=self.source_name,
                url=f"{page_url}#post-{match.group(1)}",
                raw=response.body,
                text=text,
                encoding=response.encoding,
                title=thread_title or None,
                author=author or None,
                published=published,
            )
        nxt = response.css("a.pageNav-jump--next::attr(href)").get()
        if nxt:
            yield response.follow(
                canonical(response.urljoin(nxt)),
                callback=self.parse_thread,
                cb_kwargs={"key": key, "sig": sig, "title": thread_title},
                meta=proxy_meta(self.options),
            )
            return
        # Read to its end: only now is the thread recorded, so a failed run reads it again.
        self._remember(key, {"sig": sig, "last": page_url, "at": self.run_at})

    def resume_failed(self, failure: Failure) -> Iterator[Any]:
        """The page a thread was left at is gone (posts deleted or moved): read the thread from its start."""
        request = getattr(failure, "request", None)
        first = request.meta.get("thread_url") if request is not None else None
        if request is None or not first or canonical(request.url) == first:
            self.logger.warning("thread page failed: %s", failure.getErrorMessage())
            return
        yield scrapy.Request(
            first,
            callback=self.parse_thread,
            cb_kwargs=dict(request.cb_kwargs),
            meta=proxy_meta(self.options),
            dont_filter=True,
        )

    def _remember(self, key: str, entry: dict[str, Any]) -> None:
        threads: dict[str, Any] = self.new_cursor.setdefault("threads", {})
        threads.pop(key, None)
        threads[key] = entry
        if len(threads) > MAX_THREADS:
            newest = sorted(threads.items(), key=lambda kv: int(kv[1].get("at", 0) or 0))[-MAX_THREADS:]
            self.new_cursor["threads"] = dict(newest)
