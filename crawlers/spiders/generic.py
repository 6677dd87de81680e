"""Any site, described by CSS selectors in the source's options.

- ``item``: each element matching it on a page is a posting, URL = page URL + ``#<element id or 1-based index>``;
- ``link``: each matching link (an ``a`` or an element holding one) is followed; the page, or the part of it
  matching ``content``, is a posting, URL = that page's URL;
- ``next``: the link to the next page of the listing.
Optional ``title``, ``author`` and ``date`` selectors are read inside the item (or the ``content``).

Why a seen-set: a site described only by selectors says nothing about what changed, so the cursor keeps
short hashes of the posting URLs already read (the newest 5000). A followed link already seen is not fetched
again, and once a listing page has nothing new the older pages behind it are not read either.

Cursor: ``{"seen": ["<16 hex>", ...]}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import HtmlResponse, Response, TextResponse, XmlResponse

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.html_text import html_to_text, one_line, parse_datetime, proxy_meta, url_key

__all__ = ["GenericSpider"]

MAX_SEEN = 5000


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


class GenericSpider(SourceSpider):
    name = "generic"

    def __init__(self, source_url: str = "", **kwargs: Any) -> None:
        super().__init__(source_url=source_url, **kwargs)
        # The raw URL: a trailing slash matters when the page's links are relative.
        self.start_url = source_url or self.source_url
        previous = self.cursor.get("seen")
        self.seen_before: set[str] = {str(h) for h in previous} if isinstance(previous, list) else set()
        self.seen: list[str] = [str(h) for h in previous] if isinstance(previous, list) else []
        self.new_cursor = {"seen": list(self.seen)}
        self.item_sel = str(self.options.get("item") or "")
        self.link_sel = str(self.options.get("link") or "")
        self.content_sel = str(self.options.get("content") or "")
        self.next_sel = str(self.options.get("next") or "")

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(self.start_url, callback=self.parse_listing, meta=proxy_meta(self.options))

    def _mark(self, key: str) -> None:
        self.seen_before.add(key)
        self.seen.append(key)
        if len(self.seen) > MAX_SEEN:
            self.seen = self.seen[-MAX_SEEN:]
        self.new_cursor = {"seen": list(self.seen)}

    def parse_listing(self, response: Response) -> Iterator[Any]:
        if not self.is_text(response, "listing"):
            return
        if not (self.item_sel or self.link_sel):
            # No selector: the page itself is the posting.
            yield from self.parse_linked(response, key=url_key(_without_fragment(response.url)))
            return
        page_url = _without_fragment(response.url)
        fresh = 0
        if self.item_sel:
            for index, element in enumerate(response.css(self.item_sel), start=1):
                ident = (element.attrib.get("id") or "").strip() or str(index)
                url = f"{page_url}#{ident}"
                key = url_key(url)
                if key in self.seen_before:
                    continue
                draft = self._draft(response, element, url)
                if draft is None:
                    continue
                fresh += 1
                self._mark(key)
                yield draft
        if self.link_sel:
            for element in response.css(self.link_sel):
                href = element.attrib.get("href") or element.css("a[href]::attr(href)").get()
                if not href or href.startswith(("javascript:", "mailto:", "#")):
                    continue
                url = _without_fragment(response.urljoin(href.strip()))
                key = url_key(url)
                if key in self.seen_before:
                    continue
                fresh += 1
                yield scrapy.Request(
                    url, callback=self.parse_linked, cb_kwargs={"key": key}, meta=proxy_meta(self.options)
                )
        if self.cursor.get("seen") and not fresh:
            self.logger.info("nothing new on %s: older pages are not read", response.url)
            return
        if self.next_sel:
            nxt = response.css(self.next_sel)
            href = (nxt.attrib.get("href") or nxt.css("a[href]::attr(href)").get()) if nxt else None
            if href:
                yield response.follow(
                    href.strip(), callback=self.parse_listing, meta=proxy_meta(self.options)
                )

    def parse_linked(self, response: Response, key: str) -> Iterator[Any]:
        url = _without_fragment(response.url)
        if isinstance(response, (HtmlResponse, XmlResponse)):
            part = response.css(self.content_sel) if self.content_sel else None
            if self.content_sel and not part:
                self.logger.warning("no %r on %s", self.content_sel, response.url)
                self.count("no_content")
                return
            draft = self._draft(response, part[0] if part else response.selector, url, whole_page=True)
        elif isinstance(response, TextResponse):  # a raw paste served as text/plain
            draft = self.page_posting(response, url, response.text.strip())
        else:
            self.logger.info("not a text page, skipped: %s", response.url)
            self.count("skipped_binary")
            return
        self._mark(key)
        if draft is not None and draft.text:
            yield draft

    def _draft(
        self, response: TextResponse, element: Any, url: str, whole_page: bool = False
    ) -> PostingDraft | None:
        """A posting from an element; title, author and date are looked up in the item, or in the whole
        followed page (a ``content`` part rarely holds them)."""
        text = html_to_text(element)
        if not text:
            return None
        scope = response if whole_page else element
        page_title = " ".join((response.css("title::text").get() or "").split())
        title = one_line(scope.css(str(self.options["title"]))[:1]) if self.options.get("title") else ""
        if not title and whole_page:
            title = page_title or one_line(response.css("h1")[:1])
        if not title:
            title = one_line(element.css("h1, h2, h3")[:1]) or page_title
        author = one_line(scope.css(str(self.options["author"]))[:1]) if self.options.get("author") else ""
        stamp = scope.css(str(self.options.get("date") or "time[datetime]"))[:1]
        published = None
        if stamp:
            published = parse_datetime(stamp[0].attrib.get("datetime") or one_line(stamp))
        return self.page_posting(response, url, text, title, author, published)
