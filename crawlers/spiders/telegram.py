"""A public Telegram channel through its web preview, ``https://t.me/s/CHANNEL``.

Why the preview: it needs no account or API key, and it pages back in time with ``?before=ID``. The page
shows the newest messages; older ones are reached through the page's ``link[rel=prev]`` or its
"load more" anchor (``.tme_messages_more[data-before]``). A run pages back until it reaches a message it
has already seen, or ``max_pages`` pages (default 20), so a busy channel cannot make a run endless.

Cursor: ``{"newest": ID}``, the highest message id seen. Messages at or below it are never stored again.
A run cut short by ``max_pages`` leaves older unseen messages behind; the next run starts from the newest.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response, TextResponse

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.html_text import html_to_text, one_line, parse_datetime, proxy_meta

__all__ = ["TelegramSpider", "preview_url"]

DEFAULT_MAX_PAGES = 20
_OWN_TEXT = (
    ".//div[contains(concat(' ', normalize-space(@class), ' '), ' tgme_widget_message_text ')]"
    "[not(ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' tgme_widget_message_reply ')])]"
)


def preview_url(url: str) -> str:
    """``https://t.me/CHANNEL`` becomes ``https://t.me/s/CHANNEL``; a preview URL stays as it is."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/"
    if not path.startswith("/s/") and path.count("/") == 1 and len(path) > 1:
        path = "/s" + path
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _message_id(data_post: str) -> int:
    match = re.search(r"/(\d+)$", data_post)
    return int(match.group(1)) if match else 0


class TelegramSpider(SourceSpider):
    name = "telegram"

    def __init__(self, source_url: str = "", **kwargs: Any) -> None:
        super().__init__(source_url=source_url, **kwargs)
        self.start_url = preview_url(source_url or self.source_url)
        try:
            self.floor = int(self.cursor.get("newest") or 0)
        except (TypeError, ValueError):
            self.floor = 0
        try:
            self.max_pages = max(1, int(self.options.get("max_pages") or DEFAULT_MAX_PAGES))
        except (TypeError, ValueError):
            self.max_pages = DEFAULT_MAX_PAGES
        self.new_cursor = {"newest": self.floor}

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            self.start_url, callback=self.parse_page, cb_kwargs={"page": 1}, meta=proxy_meta(self.options)
        )

    def parse_page(self, response: Response, page: int) -> Iterator[Any]:
        if not self.is_text(response, "channel page"):
            return
        channel_name = " ".join(
            (response.css('meta[property="og:title"]::attr(content)').get() or "").split()
        )
        ids: list[int] = []
        for message in response.css(".tgme_widget_message[data-post]"):
            data_post = message.attrib["data-post"].strip("/")
            message_id = _message_id(data_post)
            if not message_id:
                continue
            ids.append(message_id)
            if message_id <= self.floor:
                continue
            draft = self._draft(response, message, data_post, channel_name)
            if draft is not None:
                yield draft
        if not ids:
            return
        self.new_cursor["newest"] = max(int(self.new_cursor.get("newest") or 0), *ids)
        oldest = min(ids)
        if self.floor and oldest <= self.floor + 1:
            return  # reached what the previous run saw
        if page >= self.max_pages:
            self.logger.info("stopping after %d pages (max_pages)", page)
            return
        before = self._older(response, oldest)
        if before is not None:
            yield response.follow(
                before,
                callback=self.parse_page,
                cb_kwargs={"page": page + 1},
                meta=proxy_meta(self.options),
            )

    def _older(self, response: TextResponse, oldest: int) -> str | None:
        """The older page's URL, if the page offers one that really goes back in time."""
        href = response.css('link[rel="prev"]::attr(href)').get()
        if not href:
            before = response.css(".tme_messages_more[data-before]::attr(data-before)").get()
            if before and before.strip().isdigit():
                parts = urlsplit(response.url)
                href = urlunsplit((parts.scheme, parts.netloc, parts.path, f"before={before.strip()}", ""))
        if not href:
            return None
        target = response.urljoin(href)
        value = (parse_qs(urlsplit(target).query).get("before") or [""])[0]
        if not value.isdigit() or int(value) > oldest:
            return None
        return target

    def _draft(
        self, response: TextResponse, message: Any, data_post: str, channel_name: str
    ) -> PostingDraft | None:
        body = message.xpath(_OWN_TEXT)
        text = html_to_text(body[:1]) if body else ""
        if not text:  # a document or a poll: its visible title is what it says
            text = html_to_text(
                message.css(".tgme_widget_message_document_title, .tgme_widget_message_poll_question")
            )
        if not text:
            return None
        owner = one_line(message.css(".tgme_widget_message_owner_name")[:1])
        signed = one_line(message.css(".tgme_widget_message_from_author")[:1])
        published = parse_datetime(message.css(".tgme_widget_message_date time::attr(datetime)").get())
        return self.page_posting(
            response,
            response.urljoin("/" + data_post),
            text,
            channel_name or owner,
            owner or signed,
            published,
        )
