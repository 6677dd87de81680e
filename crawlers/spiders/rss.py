"""An RSS 2.0 (or 1.0) or Atom feed: each new item is a posting, its URL the item's link.

Why these rules: a feed is hostile XML, so it is parsed with entities left unresolved, no network and
no huge-tree mode (no XXE, no entity expansion bombs). An item that carries its full content
(``content:encoded``, Atom ``content``) is read from the feed; otherwise its link is fetched and the
page's text is the posting. Bytes are decoded by BOM, then the HTTP charset, then the XML declaration,
then detection, and a feed whose bytes the parser rejects is re-decoded and parsed as text
(`crawlers.spiders.decoding`): a Latin-1 feed that declares nothing is read, not dropped whole. The
feed is fetched conditionally (ETag, Last-Modified): a 304 is "nothing new". A malformed feed is an
error of the run, counted in its summary, and leaves the cursor alone.

Cursor: ``{"newest": newest item time (ISO), "guids": [guids at that instant], "undated": [recent guids
of items without a date], "etag": ..., "last_modified": ..., "retry": [items whose page failed]}``.
"""

from __future__ import annotations

import email.utils
import html
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import lxml.html
import scrapy
from lxml import etree
from scrapy.http import Response
from twisted.python.failure import Failure

from core.fetch_record import from_response
from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.decoding import parse_xml, response_charset, response_text
from crawlers.spiders.html_text import html_to_lines, parse_iso, proxy_meta

__all__ = ["FeedItem", "RssSpider", "parse_feed"]

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
_MAX_GUIDS = 500
_MAX_RETRY = 200
_MAX_TRIES = 3


class FeedError(ValueError):
    """The document is not a well-formed RSS or Atom feed."""


@dataclass
class FeedItem:
    guid: str
    link: str
    title: str
    author: str
    published: str  # ISO 8601, or "" when the item has no usable date
    content: str  # full content, HTML
    summary: str  # description or summary, HTML


def _parser(encoding: str | None = None) -> etree.XMLParser:
    """The hardened parser; `encoding` overrides the document's declaration when not None."""
    return etree.XMLParser(
        encoding=encoding,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el: Any) -> str:
    """An element's text with its children's, skipping unresolved entity references."""
    parts = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str):
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _children(el: Any, name: str, ns: str | None = None) -> list[Any]:
    return [c for c in el if _local(c) == name and (ns is None or etree.QName(c).namespace == ns)]


def _first_text(el: Any, name: str, ns: str | None = None) -> str:
    found = _children(el, name, ns)
    return _text(found[0]).strip() if found else ""


def _date(value: str) -> str:
    """RFC 822 (RSS) or ISO 8601 (Atom, dc:date) as an ISO string in UTC, or ""."""
    value = value.strip()
    if not value:
        return ""
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def _atom_content(el: Any) -> str:
    """Atom text constructs as HTML: ``xhtml`` children serialised, ``text`` escaped, ``src`` ignored."""
    if el.get("src"):
        return ""
    kind = (el.get("type") or "text").lower()
    if kind == "xhtml":
        inner = [etree.tostring(c, encoding="unicode", with_tail=True) for c in el if isinstance(c.tag, str)]
        return "".join(inner)
    text = _text(el)
    if kind in ("html", "text/html"):
        return text
    return html.escape(text, quote=False)


def parse_feed(body: bytes, charset: str | bytes | None = None) -> tuple[str, list[FeedItem]]:
    """(feed title, items) of an RSS or Atom document served with HTTP charset label `charset`; raises
    FeedError when it is neither. Decoded by BOM, `charset`, the XML declaration, then detection."""
    try:
        root = parse_xml(body, charset, _parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from exc
    if root is None:
        raise FeedError("empty document")
    kind = _local(root)
    if kind == "feed":
        return _first_text(root, "title"), [_atom_entry(e) for e in _children(root, "entry", ATOM)]
    if kind == "rss":
        channels = _children(root, "channel")
        if not channels:
            raise FeedError("RSS without a channel")
        return _first_text(channels[0], "title"), [_rss_item(i) for i in _children(channels[0], "item")]
    if kind == "RDF":  # RSS 1.0: items are siblings of the channel
        channels = _children(root, "channel")
        title = _first_text(channels[0], "title") if channels else ""
        return title, [_rss_item(i) for i in _children(root, "item")]
    raise FeedError(f"not a feed: root element <{kind or '?'}>")


def _rss_item(item: Any) -> FeedItem:
    link = _first_text(item, "link")
    guid = _first_text(item, "guid") or item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about") or ""
    published = _first_text(item, "pubDate") or _first_text(item, "date")
    author = _first_text(item, "creator") or _first_text(item, "author")
    encoded = _children(item, "encoded", CONTENT)
    return FeedItem(
        guid=guid or link,
        link=link,
        title=_first_text(item, "title"),
        author=author,
        published=_date(published),
        content=_text(encoded[0]) if encoded else "",
        summary=_first_text(item, "description"),
    )


def _atom_entry(entry: Any) -> FeedItem:
    link = ""
    for el in _children(entry, "link", ATOM):
        rel = (el.get("rel") or "alternate").lower()
        if rel == "alternate" and el.get("href"):
            link = str(el.get("href"))
            if (el.get("type") or "text/html").lower() in ("text/html", "application/xhtml+xml"):
                break
    authors = _children(entry, "author", ATOM)
    contents = _children(entry, "content", ATOM)
    summaries = _children(entry, "summary", ATOM)
    titles = _children(entry, "title", ATOM)
    title_html = _atom_content(titles[0]) if titles else ""
    return FeedItem(
        guid=_first_text(entry, "id", ATOM) or link,
        link=link,
        title=html_to_lines(title_html) if title_html else "",
        author=_first_text(authors[0], "name", ATOM) if authors else "",
        published=_date(_first_text(entry, "published", ATOM) or _first_text(entry, "updated", ATOM)),
        content=_atom_content(contents[0]) if contents else "",
        summary=_atom_content(summaries[0]) if summaries else "",
    )


def _page_title(markup: str | bytes) -> str:
    try:
        titles = lxml.html.fromstring(markup).xpath("//title")
    except (etree.ParserError, ValueError):
        return ""
    return " ".join(titles[0].text_content().split()) if titles else ""


class RssSpider(SourceSpider):
    name = "rss"

    async def start(self) -> AsyncIterator[Any]:
        newest = str(self.cursor.get("newest") or "")
        self._since = parse_iso(newest)
        self._guids_at_since = {str(g) for g in self.cursor.get("guids") or []}
        self._newest, self._newest_guids = self._since, set(self._guids_at_since)
        self._undated = [str(g) for g in self.cursor.get("undated") or []]
        self._retry: dict[str, dict[str, Any]] = {
            str(e["link"]): e for e in self.cursor.get("retry") or [] if isinstance(e, dict) and e.get("link")
        }
        self._save_cursor()
        for entry in list(self._retry.values()):
            yield self._page_request(entry)
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"}
        if self.cursor.get("etag"):
            headers["If-None-Match"] = str(self.cursor["etag"])
        if self.cursor.get("last_modified"):
            headers["If-Modified-Since"] = str(self.cursor["last_modified"])
        yield scrapy.Request(
            self.source_url,
            headers=headers,
            callback=self.parse_feed,
            meta={**proxy_meta(self.options), "handle_httpstatus_list": [304]},
            dont_filter=True,
        )

    def parse_feed(self, response: Response) -> Iterator[Any]:
        if response.status == 304:
            self.count("not_modified")
            return
        try:
            _, items = parse_feed(response.body, response_charset(response))
        except FeedError as exc:
            self.logger.warning("feed %s: %s", response.url, exc)
            self.count("errors")
            return
        for name, header in (("etag", "ETag"), ("last_modified", "Last-Modified")):
            value = response.headers.get(header)
            self.new_cursor[name] = value.decode("latin-1") if value else None
        seen_undated = set(self._undated)
        for item in items:
            if not item.guid:
                continue
            published = parse_iso(item.published)
            if not self._is_new(item.guid, published, seen_undated):
                continue
            self._advance(item.guid, published)
            link = response.urljoin(item.link) if item.link else ""
            entry = {**asdict(item), "link": link}
            if item.content.strip() or not link:
                markup = item.content if item.content.strip() else item.summary
                url = link or f"{response.url}#{item.guid}"
                yield self._posting(entry, url, markup.encode("utf-8"), markup, response)
            else:
                yield self._page_request(entry)
        self._save_cursor()

    def parse_page(self, response: Response, entry: dict[str, Any]) -> Iterator[Any]:
        self._retry.pop(entry["link"], None)
        self._save_cursor()
        markup = response_text(response)  # any response, text or not: BOM, header, <meta>, detection
        if not entry.get("title"):
            entry = {**entry, "title": _page_title(markup)}
        yield self._posting(entry, entry["link"], response.body, markup, response, page=True)

    def page_failed(self, failure: Failure) -> None:
        """Keep an item whose page failed for a transient reason, so the next run fetches it again."""
        self.keep_for_retry(failure, self._retry, "link", "feed item page", _MAX_TRIES)
        self._save_cursor()

    def closed(self, reason: str) -> None:
        self.keep_old_cursor(reason, "etag", "last_modified")

    # -- helpers -----------------------------------------------------------------------------
    def _posting(
        self,
        entry: dict[str, Any],
        url: str,
        raw: bytes,
        markup: str | bytes,
        response: Response,
        page: bool = False,
    ) -> PostingDraft:
        text = html_to_lines(markup) if markup else ""
        if not text and not page:
            text = " ".join(str(entry.get("title") or "").split())
        return PostingDraft(
            source=self.source_name,
            url=url,
            raw=raw,
            text=text,
            title=str(entry.get("title") or "") or None,
            author=str(entry.get("author") or "") or None,
            published=parse_iso(str(entry.get("published") or "")),
            fetch=from_response(response),
        )

    def _page_request(self, entry: dict[str, Any]) -> scrapy.Request:
        return scrapy.Request(
            entry["link"],
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"entry": entry},
            dont_filter=True,
            meta=proxy_meta(self.options),
        )

    def _is_new(self, guid: str, published: datetime | None, seen_undated: set[str]) -> bool:
        if published is None:
            return guid not in seen_undated
        if self._since is None:
            return True
        return published > self._since or (published == self._since and guid not in self._guids_at_since)

    def _advance(self, guid: str, published: datetime | None) -> None:
        if published is None:
            self._undated = [*(g for g in self._undated if g != guid), guid][-_MAX_GUIDS:]
        elif self._newest is None or published > self._newest:
            self._newest, self._newest_guids = published, {guid}
        elif published == self._newest:
            self._newest_guids.add(guid)

    def _save_cursor(self) -> None:
        self.new_cursor["newest"] = self._newest.isoformat() if self._newest else None
        self.new_cursor["guids"] = sorted(self._newest_guids)[:_MAX_GUIDS]
        self.new_cursor["undated"] = self._undated
        self.new_cursor["retry"] = list(self._retry.values())[:_MAX_RETRY]
