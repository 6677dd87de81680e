"""phpBB (prosilver and its many derivatives): a ``viewforum.php?f=N`` listing, its topics and their posts.

Why this shape: the listing already says, per topic, how many replies it has and which post is the last,
so a run only opens topics whose reply count or last post changed since the previous run, and then only
from the last page it read (older pages of a topic do not change when someone replies). Listing pages are
sorted by last post, so paging stops at the first page where nothing changed. Guests get a ``sid`` in
every link; it is stripped, or every run would see new URLs for the same posts.

Cursor: ``{"topics": {KEY: {"sig": "<replies>|<last post link>|<last post time>", "last": URL, "at": T}}}``
where KEY is ``t=<topic id>``, ``last`` the last topic page read, ``at`` the run time (the newest 5000 are kept).
The listing/topic walk itself is `ForumListingSpider`'s; this module says where phpBB puts things.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from parsel import Selector
from scrapy.http import TextResponse

from core.posting import PostingDraft
from crawlers.spiders.forum_base import ForumListingSpider
from crawlers.spiders.html_text import html_to_text, one_line, parse_datetime, strip_query_params

__all__ = ["PhpbbSpider", "topic_key"]

_SESSION_PARAMS = ("sid",)
_DIGITS = re.compile(r"\d[\d,.\s]*")


def canonical(url: str) -> str:
    """The URL without session id and fragment: the same page has the same URL in every run."""
    return strip_query_params(url.split("#", 1)[0], _SESSION_PARAMS)


def topic_key(url: str) -> str:
    """``t=<id>`` for a topic URL (whatever page or forum parameter it carries), else the URL itself."""
    query = parse_qs(urlsplit(url).query)
    topic = (query.get("t") or [""])[0]
    return f"t={topic}" if topic.isdigit() else canonical(url)


def _count(text: str | None) -> str:
    match = _DIGITS.search(text or "")
    return re.sub(r"\D", "", match.group(0)) if match else ""


def _legacy_date(author_line: str) -> datetime | None:
    """phpBB 3.0 prints no ``<time>``: the date follows the last "»" in the English default format."""
    stamp = author_line.rsplit("»", 1)[-1].strip()
    for fmt in ("%a %b %d, %Y %I:%M %p", "%a %b %d, %Y %H:%M"):
        try:
            return datetime.strptime(stamp, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


class PhpbbSpider(ForumListingSpider):
    name = "phpbb"
    cursor_key = "topics"
    noun = "topic"

    def canonical_url(self, url: str) -> str:
        return canonical(url)

    def topic_key(self, url: str) -> str:
        return topic_key(url)

    def listing_links(self, response: TextResponse) -> Iterator[tuple[str, Any, Selector | None]]:
        for link in response.css("a.topictitle"):
            href = link.attrib.get("href")
            if not href:
                continue
            row = link.xpath("ancestor::*[self::li or self::tr or self::dl][1]")
            yield href, link, row[0] if row else None

    def row_activity(self, row: Selector) -> tuple[str, str, str]:
        """The reply count, the last post's link and time."""
        replies = _count(" ".join(row.css("dd.posts::text, .posts::text").getall()))
        last = row.css("dd.lastpost, .lastpost")
        last_link = last.css('a[href*="p="]::attr(href), a[href*="#p"]::attr(href)').get() or ""
        last_time = (last.css("time::attr(datetime)").get() or one_line(last[:1])) if last else ""
        return replies, last_link, last_time

    def next_href(self, response: TextResponse) -> str | None:
        return response.css('a[rel="next"]::attr(href), .pagination .next a::attr(href)').get()

    def topic_title(self, response: TextResponse) -> str:
        heading = response.css("h2.topic-title")
        return one_line(heading.css("a")[:1] or heading[:1])

    def posts(self, response: TextResponse, page_url: str, title: str) -> Iterator[PostingDraft]:
        for post in response.css("div.post"):
            post_id = post.attrib.get("id", "")
            content = post.css(".content")
            if not post_id or not content:
                continue
            text = html_to_text(content[0])
            if not text:
                continue
            author = (
                post.css(".author .username::text, .author .username-coloured::text").get()
                or post.css(".postprofile .username::text, .postprofile .username-coloured::text").get()
                or one_line(post.css(".author strong")[:1] or post.css(".postprofile dt")[:1])
            ).strip()
            published = parse_datetime(
                post.css(".author time::attr(datetime)").get() or post.css("time::attr(datetime)").get()
            ) or _legacy_date(one_line(post.css(".author")[:1]))
            yield self.page_posting(response, f"{page_url}#{post_id}", text, title, author, published)

    #: The topic page callback, under the name this spider always had.
    parse_topic = ForumListingSpider.parse_item
