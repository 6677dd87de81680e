"""XenForo 2: a forum listing ``.../forums/NAME.ID/``, its threads and their posts.

Why this shape: each listing row shows the thread's reply count and a link to its latest post, so a run
opens only threads whose row changed since the previous run, and resumes each at the last page it read
(XenForo appends replies; earlier pages stay as they were). Listings are sorted by last message, so paging
stops at the first page where nothing changed. Prefix labels sit in the same title cell as the thread link,
so the link is the one XenForo marks ``data-tp-primary`` (or the cell's last link).

Cursor: ``{"threads": {KEY: {"sig": "<replies>|<latest post link>|<latest time>", "last": URL, "at": T}}}``
where KEY is ``thread-<id>``, ``last`` the last thread page read, ``at`` the run time (newest 5000 kept).
The listing/thread walk itself is `ForumListingSpider`'s; this module says where XenForo puts things.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from parsel import Selector
from scrapy.http import TextResponse

from core.posting import PostingDraft
from crawlers.spiders.forum_base import ForumListingSpider
from crawlers.spiders.html_text import html_to_text, parse_datetime

__all__ = ["XenforoSpider", "thread_key"]

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


class XenforoSpider(ForumListingSpider):
    name = "xenforo"
    cursor_key = "threads"
    noun = "thread"

    def __init__(self, source_url: str = "", **kwargs: Any) -> None:
        super().__init__(source_url=source_url, **kwargs)
        parts = urlsplit(self.start_url)
        if parts.path and not parts.path.endswith("/") and not parts.query and "/forums/" in parts.path:
            self.start_url = urlunsplit((parts.scheme, parts.netloc, parts.path + "/", "", ""))

    def canonical_url(self, url: str) -> str:
        return canonical(url)

    def topic_key(self, url: str) -> str:
        return thread_key(url)

    def listing_links(self, response: TextResponse) -> Iterator[tuple[str, Any, Selector | None]]:
        for cell in response.css(".structItem-title"):
            link = cell.css("a[data-tp-primary]") or cell.css("a[href]")[-1:]
            href = link.attrib.get("href") if link else None
            if not href:
                continue
            row = cell.xpath(
                "ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' structItem ')][1]"
            )
            yield href, link, row[0] if row else None

    def row_activity(self, row: Selector) -> tuple[str, str, str]:
        """The reply count, the latest post's link and time."""
        meta = row.css(".structItem-cell--meta")
        replies = (
            meta.css("dl:first-of-type dd::text").get() or meta.attrib.get("data-replies") or ""
        ).strip()
        latest = row.css(".structItem-cell--latest")
        link = latest.css("a::attr(href)").get() or ""
        when = latest.css("time::attr(datetime)").get() or latest.css("time::attr(data-time)").get() or ""
        return replies, link, when

    def next_href(self, response: TextResponse) -> str | None:
        return response.css("a.pageNav-jump--next::attr(href)").get()

    def topic_title(self, response: TextResponse) -> str:
        heading = response.css("h1.p-title-value")
        # The heading's own text: prefix labels are elements of their own.
        return " ".join(" ".join(heading.xpath("./text()").getall()).split()) if heading else ""

    def posts(self, response: TextResponse, page_url: str, title: str) -> Iterator[PostingDraft]:
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
            yield self.page_posting(
                response, f"{page_url}#post-{match.group(1)}", text, title, author, published
            )

    #: The thread page callback, under the name this spider always had.
    parse_thread = ForumListingSpider.parse_item
