"""phpBB (prosilver and its many derivatives): a ``viewforum.php?f=N`` listing, its topics and their posts.

Why this shape: the listing already says, per topic, how many replies it has and which post is the last,
so a run only opens topics whose reply count or last post changed since the previous run, and then only
from the last page it read (older pages of a topic do not change when someone replies). Listing pages are
sorted by last post, so paging stops at the first page where nothing changed. Guests get a ``sid`` in
every link; it is stripped, or every run would see new URLs for the same posts.

Cursor: ``{"topics": {KEY: {"sig": "<replies>|<last post link>|<last post time>", "last": URL, "at": T}}}``
where KEY is ``t=<topic id>``, ``last`` the last topic page read, ``at`` the run time (the newest 5000 are kept).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.html_text import html_to_text, parse_datetime, proxy_meta, strip_query_params

__all__ = ["PhpbbSpider", "topic_key"]

MAX_TOPICS = 5000
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


def _text(sel: Any) -> str:
    """An element's text on one line (titles, names)."""
    return " ".join(html_to_text(sel).split()) if sel is not None else ""


class PhpbbSpider(SourceSpider):
    name = "phpbb"

    def __init__(self, source_url: str = "", **kwargs: Any) -> None:
        super().__init__(source_url=source_url, **kwargs)
        self.start_url = source_url or self.source_url
        previous = self.cursor.get("topics")
        self.known: dict[str, dict[str, Any]] = dict(previous) if isinstance(previous, dict) else {}
        self.run_at = int(time.time())
        self.new_cursor = {"topics": dict(self.known)}

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            canonical(self.start_url), callback=self.parse_listing, meta=proxy_meta(self.options)
        )

    def parse_listing(self, response: Response) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self.logger.error("listing is not a text page: %s", response.url)
            self.count("errors")
            return
        changed = 0
        for link in response.css("a.topictitle"):
            href = link.attrib.get("href")
            if not href:
                continue
            url = canonical(response.urljoin(href))
            key = topic_key(url)
            row = link.xpath("ancestor::*[self::li or self::tr or self::dl][1]")
            sig = self._signature(row[0] if row else None, response)
            before = self.known.get(key)
            if before and sig and before.get("sig") == sig:
                continue
            changed += 1
            resume = str(before["last"]) if before and before.get("last") else url
            yield response.follow(
                resume,
                callback=self.parse_topic,
                errback=self.resume_failed,
                cb_kwargs={"key": key, "sig": sig, "title": _text(link)},
                meta={**proxy_meta(self.options), "topic_url": url},
            )
        if self.known and not changed:
            self.logger.info("nothing changed on %s: older listing pages are not read", response.url)
            return
        nxt = response.css('a[rel="next"]::attr(href), .pagination .next a::attr(href)').get()
        if nxt:
            yield response.follow(
                canonical(response.urljoin(nxt)), callback=self.parse_listing, meta=proxy_meta(self.options)
            )

    def _signature(self, row: Selector | None, response: TextResponse) -> str:
        """What changes when someone replies: the reply count, the last post's link and time."""
        if row is None:
            return ""
        replies = _count(" ".join(row.css("dd.posts::text, .posts::text").getall()))
        last = row.css("dd.lastpost, .lastpost")
        last_link = last.css('a[href*="p="]::attr(href), a[href*="#p"]::attr(href)').get() or ""
        last_time = (last.css("time::attr(datetime)").get() or _text(last[:1])) if last else ""
        if last_link:
            last_link = canonical(response.urljoin(last_link))
        sig = f"{replies}|{last_link}|{last_time}"
        return "" if sig == "||" else sig

    def parse_topic(self, response: Response, key: str, sig: str, title: str) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self.logger.error("topic is not a text page: %s", response.url)
            self.count("errors")
            return
        page_url = canonical(response.url)
        heading = response.css("h2.topic-title")
        topic_title = _text(heading.css("a")[:1] or heading[:1])
        topic_title = topic_title or title or (response.css("title::text").get() or "").strip()
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
                or _text(post.css(".author strong")[:1] or post.css(".postprofile dt")[:1])
            ).strip()
            published = parse_datetime(
                post.css(".author time::attr(datetime)").get() or post.css("time::attr(datetime)").get()
            ) or _legacy_date(_text(post.css(".author")[:1]))
            yield PostingDraft(
                source=self.source_name,
                url=f"{page_url}#{post_id}",
                raw=response.body,
                text=text,
                encoding=response.encoding,
                title=topic_title or None,
                author=author or None,
                published=published,
            )
        nxt = response.css('a[rel="next"]::attr(href), .pagination .next a::attr(href)').get()
        if nxt:
            yield response.follow(
                canonical(response.urljoin(nxt)),
                callback=self.parse_topic,
                cb_kwargs={"key": key, "sig": sig, "title": topic_title},
                meta=proxy_meta(self.options),
            )
            return
        # The topic is read to its end: only now is it recorded, so a failed run reads it again.
        self._remember(key, {"sig": sig, "last": page_url, "at": self.run_at})

    def resume_failed(self, failure: Failure) -> Iterator[Any]:
        """The page a topic was left at is gone (posts deleted, topic split): read the topic from its start."""
        request = getattr(failure, "request", None)
        first = request.meta.get("topic_url") if request is not None else None
        if request is None or not first or canonical(request.url) == first:
            self.logger.warning("topic page failed: %s", failure.getErrorMessage())
            return
        yield scrapy.Request(
            first,
            callback=self.parse_topic,
            cb_kwargs=dict(request.cb_kwargs),
            meta=proxy_meta(self.options),
            dont_filter=True,
        )

    def _remember(self, key: str, entry: dict[str, Any]) -> None:
        topics: dict[str, Any] = self.new_cursor.setdefault("topics", {})
        topics.pop(key, None)
        topics[key] = entry
        if len(topics) > MAX_TOPICS:
            newest = sorted(topics.items(), key=lambda kv: int(kv[1].get("at", 0) or 0))[-MAX_TOPICS:]
            self.new_cursor["topics"] = dict(newest)
