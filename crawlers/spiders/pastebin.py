"""Pastebin's scraping API: ``URL/api_scraping.php?limit=N``, then each ``scrape_url``.

Why these rules: the API answers HTTP 200 with a sentinel text for pastes that are not ready, gone or
not allowed; those are never stored, and a not-ready paste is fetched again next run. The cursor is
the newest paste date fully read, plus the keys still pending.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider

__all__ = ["PastebinSpider", "is_sentinel"]

_NOT_READY = ("not ready", "try again in")
_NOT_FOUND = ("cannot find this paste", "paste not found", "paste has been removed")
_NO_ACCESS = ("does not have access", "not whitelisted", "please slow down", "scraping api")


def is_sentinel(body: bytes) -> str | None:
    """Which sentinel a scrape answer is (not_ready, not_found, no_access), or None for a real paste."""
    if len(body) > 400:
        return None
    text = " ".join(body.decode("utf-8", errors="replace").split()).lower()
    if any(marker in text for marker in _NOT_READY):
        return "not_ready"
    if text.startswith("error") and any(marker in text for marker in _NOT_FOUND):
        return "not_found"
    if ("your ip" in text or text.startswith("error")) and any(marker in text for marker in _NO_ACCESS):
        return "no_access"
    return None


class PastebinSpider(SourceSpider):
    name = "pastebin"

    async def start(self) -> AsyncIterator[Any]:
        limit = int(self.options.get("limit") or self.settings.getint("LEAKSENTINEL_PASTEBIN_LIMIT", 100))
        yield scrapy.Request(
            f"{self.base_url}/api_scraping.php?limit={limit}", callback=self.parse_listing, dont_filter=True
        )

    def parse_listing(self, response: Response) -> Iterator[Any]:
        try:
            entries = json.loads(response.text)
        except (ValueError, UnicodeDecodeError):
            self.logger.warning("listing is not JSON: %r", response.text[:200])
            self.count("errors")
            return
        if not isinstance(entries, list):
            self.logger.warning("listing is not a list: %r", response.text[:200])
            self.count("errors")
            return
        last = int(self.cursor.get("date", 0) or 0)
        pending = set(self.cursor.get("pending", []))
        wanted = []
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("scrape_url") or not entry.get("key"):
                continue
            if _int(entry.get("date")) > last or str(entry["key"]) in pending:
                wanted.append(entry)
        newest = max([last, *(_int(e.get("date")) for e in wanted)])
        # Set before any paste is read: their callbacks only add or remove pending keys.
        self.new_cursor = {"date": newest, "pending": []}
        for entry in wanted:
            yield response.follow(
                str(entry["scrape_url"]), callback=self.parse_paste, cb_kwargs={"entry": entry}
            )

    def parse_paste(self, response: Response, entry: dict[str, Any]) -> Iterator[Any]:
        sentinel = is_sentinel(response.body)
        key = str(entry["key"])
        if sentinel:
            self.count(f"sentinel_{sentinel}")
            if sentinel == "not_ready":
                pending = set(self.new_cursor.get("pending", []))
                pending.add(key)
                self.new_cursor["pending"] = sorted(pending)
            return
        pending = set(self.new_cursor.get("pending", []))
        pending.discard(key)
        self.new_cursor["pending"] = sorted(pending)
        date = _int(entry.get("date"))
        yield PostingDraft(
            source=self.source_name,
            url=str(entry.get("full_url") or response.url),
            raw=response.body,
            encoding=response.encoding if hasattr(response, "encoding") else None,
            title=str(entry.get("title") or "") or None,
            author=str(entry.get("user") or "") or None,
            published=datetime.fromtimestamp(date, UTC) if date else None,
        )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
