"""Pastebin's scraping API: ``URL/api_scraping.php?limit=N``, then each ``scrape_url``.

Why these rules: the API answers HTTP 200 for much that is not a paste, and none of it may be stored as
a posting. `classify` names each such answer:

- ``empty`` (no body), ``not_ready`` ("not ready for scraping yet") and ``html_error`` (an HTML error
  page where raw text belongs): transient, the key stays pending and is fetched again next run;
- ``not_found`` ("cannot find this paste", an invalid key) and ``removed`` ("has been removed"): gone;
- ``no_access`` ("YOUR IP / THIS IP ... DOES NOT HAVE ACCESS"): the deployment is not whitelisted, an
  error of the run, logged in one line; keys stay pending;
- ``rate_limited`` ("slow down", "too many requests" with HTTP 200): waited out and asked again within
  the run, like a 429 with Retry-After (`RetryAfterMiddleware`); a run that recovered is not a failure.

The cursor is the newest paste date fully read, plus the keys still pending.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response

from core.fetch_record import from_response
from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider

__all__ = ["PastebinSpider", "classify", "is_sentinel"]

#: Answers longer than this are pastes whatever they say (a paste quoting an error message).
_MAX_SENTINEL = 400
_NOT_READY = re.compile(r"\bnot ready\b")
_NOT_FOUND = re.compile(r"^error\b.*\b(cannot find this paste|paste not found|paste key is not valid)")
_REMOVED = re.compile(r"\bpaste (has been|was) (removed|deleted)\b")
_NO_ACCESS = re.compile(r"\b(does not have access|not whitelisted)\b")
_RATE_LIMITED = re.compile(r"\b(slow down|too many requests|rate limit(ed)?)\b")
_HTML_START = re.compile(rb"^\s*(<!doctype html|<html)", re.IGNORECASE)
#: Kinds whose key is asked for again next run.
_PENDING = frozenset({"empty", "not_ready", "html_error", "no_access", "rate_limited"})
_SLOW_DOWN_TRIES = 3


def classify(body: bytes, content_type: str | bytes | None = None) -> str | None:
    """What a scrape answer is when it is not a paste (see the module docstring), or None for a paste.

    An HTML page counts as an error page only when it is served as ``text/html``: raw pastes come as
    ``text/plain``, and a paste of HTML source is still a paste.
    """
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    if not body.strip():
        return "empty"
    if "html" in (content_type or "").lower() and _HTML_START.match(body[:1024]):
        return "html_error"
    if len(body) > _MAX_SENTINEL or body.strip().count(b"\n") > 2:
        return None  # a sentinel is one short message, not a document
    text = " ".join(body.decode("utf-8", errors="replace").split()).lower()
    if text.startswith("forbidden:"):
        text = text.removeprefix("forbidden:").strip()
    if _NO_ACCESS.search(text) and re.search(r"\b(your|this) ip\b|^error\b", text):
        return "no_access"
    if _NOT_READY.search(text):
        return "not_ready"
    if _NOT_FOUND.search(text):
        return "not_found"
    if _REMOVED.search(text):
        return "removed"
    if _RATE_LIMITED.search(text):
        return "rate_limited"
    return None


def is_sentinel(body: bytes) -> str | None:
    """`classify` for a body alone (kept for callers that have no Content-Type)."""
    return classify(body)


class PastebinSpider(SourceSpider):
    name = "pastebin"
    # Pastes are fetched in the order the listing callback yields them (oldest first): a FIFO scheduler
    # queue, not Scrapy's default LIFO one. Not by request priorities: Scrapy keeps a queue per priority and
    # counts every queue's length at each dequeue, so 2,000 distinct priorities cost a crawl O(n^2) (~10%
    # of a 2,000-paste run's CPU, the bare spider's too).
    # A paste asked for again (an HTTP error, Retry-After, "slow down") goes ahead of the pastes not yet
    # fetched, which are all younger: one priority step up, not back to the end of the queue.
    custom_settings = {"SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue", "RETRY_PRIORITY_ADJUST": 1}
    _refused = False

    async def start(self) -> AsyncIterator[Any]:
        limit = int(self.options.get("limit") or self.settings.getint("LEAKSENTINEL_PASTEBIN_LIMIT", 100))
        yield scrapy.Request(
            f"{self.base_url}/api_scraping.php?limit={limit}", callback=self.parse_listing, dont_filter=True
        )

    async def _slowed_down(self, response: Response) -> scrapy.Request | None:
        """The same request again after a wait (1, 2, 4 s by default) when the API asked to slow down;
        None when it was asked too often (the caller keeps what it needs for the next run)."""
        tries = int(response.meta.get("slow_down_tries", 0))
        if tries >= _SLOW_DOWN_TRIES:
            self.logger.warning("still rate-limited after %d waits: %s", tries, response.url)
            return None
        delay = self.settings.getfloat("LEAKSENTINEL_PASTEBIN_SLOW_DOWN_S", 1.0) * 2**tries
        self.logger.info("%s asked to slow down; waiting %.1f s", response.url, delay)
        self.count("retry_after_waits")
        await asyncio.sleep(delay)
        request = response.request
        adjust = self.settings.getint("RETRY_PRIORITY_ADJUST")
        retry = request.replace(dont_filter=True, priority=request.priority + adjust) if request else None
        if retry is not None:
            retry.meta["slow_down_tries"] = tries + 1
        return retry

    async def parse_listing(self, response: Response) -> AsyncIterator[Any]:
        kind = classify(response.body, response.headers.get(b"Content-Type"))
        if kind == "rate_limited":
            retry = await self._slowed_down(response)
            if retry is not None:
                yield retry
            else:  # no listing this run: an error, the cursor stays as it was
                self.count("errors")
            return
        if kind == "no_access":
            self.count("refused")  # the site refused us: with nothing read, the run failed (crawlers.job)
            self.logger.error(
                "pastebin refused the scraping API (IP not whitelisted): %r", response.body[:200]
            )
            return
        try:
            entries = json.loads(response.text)
        except (ValueError, UnicodeDecodeError, AttributeError):
            self.logger.warning("listing is not JSON: %r", response.body[:200])
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
        # Oldest first (the FIFO queue keeps this order): a repost must find the paste it copies already
        # stored, so the leak's alert points at the first copy and the repost joins it.
        wanted.sort(key=lambda e: (_int(e.get("date")), str(e["key"])))
        for entry in wanted:
            yield response.follow(
                str(entry["scrape_url"]), callback=self.parse_paste, cb_kwargs={"entry": entry}
            )

    async def parse_paste(self, response: Response, entry: dict[str, Any]) -> AsyncIterator[Any]:
        kind = classify(response.body, response.headers.get(b"Content-Type"))
        key = str(entry["key"])
        if kind == "rate_limited":
            retry = await self._slowed_down(response)
            if retry is not None:
                yield retry
                return
        if kind:
            self.count(f"sentinel_{kind}")
            if kind == "no_access":
                self.count("refused")
            if kind == "no_access" and not self._refused:
                self._refused = True  # one error line per run, not one per paste
                self.logger.error("pastebin refused paste %s (IP not whitelisted)", key)
            if kind in _PENDING:
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
            fetch=from_response(response),
            title=str(entry.get("title") or "") or None,
            author=str(entry.get("user") or "") or None,
            published=datetime.fromtimestamp(date, UTC) if date else None,
        )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
