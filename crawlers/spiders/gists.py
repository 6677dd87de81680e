"""GitHub's public gists: ``URL/gists/public`` (newest first, ``Link: rel="next"``), then each file's ``raw_url``.

Why these rules: the listing is re-read every run, but conditionally (``If-None-Match`` with the ETag
of the last run's first page), so an unchanged listing is a 304 that GitHub does not count against the
rate limit. Raw files are the expensive part: a file is fetched only when its gist was updated after
the cursor, and never when it is bigger than ``MAX_FILE_BYTES`` or marked ``truncated``. A file whose
fetch failed for a transient reason is kept in the cursor and fetched again next run.

Cursor: ``{"updated_at": newest gist updated_at (ISO, as GitHub wrote it), "ids": [gist ids at that
instant], "etag": first listing page's ETag, "retry": [files to fetch again]}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider

__all__ = ["MAX_FILE_BYTES", "GistsSpider", "parse_link_next"]

MAX_FILE_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_PAGES = 10
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
_MAX_IDS = 1000
_MAX_RETRY = 200
_MAX_TRIES = 3
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")


def parse_link_next(values: list[bytes] | list[str]) -> str | None:
    """The ``rel="next"`` target of RFC 8288 ``Link`` header values, or None."""
    for value in values:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        for target, params in _LINK.findall(text):
            for param in params.split(";"):
                key, _, val = param.strip().partition("=")
                if key.strip().lower() == "rel" and "next" in val.strip().strip('"').lower().split():
                    return str(target)
    return None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones are UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class GistsSpider(SourceSpider):
    name = "gists"

    @property
    def _proxy(self) -> dict[str, Any]:
        """Request meta for the source's ``--proxy`` (HttpProxyMiddleware reads ``meta["proxy"]``)."""
        proxy = self.options.get("proxy")
        return {"proxy": str(proxy)} if proxy else {}

    async def start(self) -> AsyncIterator[Any]:
        self.max_pages = _positive_int(self.options.get("max_pages"), DEFAULT_MAX_PAGES)
        self._since = parse_time(self.cursor.get("updated_at"))
        self._ids_at_since = {str(i) for i in self.cursor.get("ids") or []}
        self._newest = self._since
        self._newest_raw = str(self.cursor.get("updated_at") or "")
        self._newest_ids = set(self._ids_at_since)
        self._queued: set[str] = set()
        self._retry: dict[str, dict[str, Any]] = {
            str(e["url"]): e for e in self.cursor.get("retry") or [] if isinstance(e, dict) and e.get("url")
        }
        self._save_cursor()
        for entry in list(self._retry.values()):
            yield self._file_request(entry)
        headers = dict(API_HEADERS)
        if self.cursor.get("etag"):
            headers["If-None-Match"] = str(self.cursor["etag"])
        yield scrapy.Request(
            f"{self.base_url}/gists/public",
            headers=headers,
            callback=self.parse_listing,
            cb_kwargs={"page": 1},
            meta={**self._proxy, "handle_httpstatus_list": [304]},
            dont_filter=True,
        )

    def parse_listing(self, response: Response, page: int) -> Iterator[Any]:
        if response.status == 304:
            self.count("not_modified")
            return
        try:
            gists = json.loads(response.body)
        except ValueError:
            gists = None
        if not isinstance(gists, list):
            self.logger.warning("gists listing %s is not a JSON list: %r", response.url, response.body[:200])
            self.count("errors")
            return
        if page == 1:
            etag = response.headers.get("ETag")
            self.new_cursor["etag"] = etag.decode("latin-1") if etag else None
        fresh = 0
        for gist in gists:
            if not isinstance(gist, dict) or not gist.get("id"):
                continue
            gist_id = str(gist["id"])
            updated = parse_time(gist.get("updated_at"))
            if gist_id in self._queued or not self._is_new(gist_id, updated):
                continue
            fresh += 1
            self._queued.add(gist_id)
            self._advance(gist_id, str(gist.get("updated_at") or ""), updated)
            for entry in self._files_of(response, gist):
                yield self._file_request(entry)
        self._save_cursor()
        # The listing is newest first: a page with nothing new means the rest is old too.
        next_url = parse_link_next(response.headers.getlist("Link"))
        if fresh and next_url and page < self.max_pages:
            yield scrapy.Request(
                response.urljoin(next_url),
                headers=dict(API_HEADERS),
                callback=self.parse_listing,
                cb_kwargs={"page": page + 1},
                dont_filter=True,
                meta=self._proxy,
            )

    def parse_file(self, response: Response, entry: dict[str, Any]) -> Iterator[Any]:
        self._retry.pop(entry["url"], None)
        self._save_cursor()
        yield PostingDraft(
            source=self.source_name,
            url=entry["url"],
            raw=response.body,
            encoding=getattr(response, "encoding", None),
            title=entry.get("title") or None,
            author=entry.get("author") or None,
            published=parse_time(entry.get("published")),
        )

    def file_failed(self, failure: Failure) -> None:
        """Keep a file that failed for a transient reason, so the next run fetches it again."""
        request = failure.request  # type: ignore[attr-defined]
        entry: dict[str, Any] = request.cb_kwargs["entry"]
        status = failure.value.response.status if isinstance(failure.value, HttpError) else 0
        gone = status in (404, 410)
        tries = int(entry.get("tries", 0)) + 1
        self.logger.warning("gist file %s failed: %s", entry["url"], failure.getErrorMessage())
        if not gone and not _logged_by_retry(request, self.settings.getint("RETRY_TIMES")):
            self.count("errors")
        if gone or tries >= _MAX_TRIES:
            self._retry.pop(entry["url"], None)
        else:
            self._retry[entry["url"]] = {**entry, "tries": tries}
        self._save_cursor()

    def closed(self, reason: str) -> None:
        """A run cut short (page budget, shutdown) keeps the old cursor: what it queued but never read
        must not count as seen; without the validators, the next run reads the listing again."""
        if reason != "finished":
            self.new_cursor = {**self.cursor, "etag": None}

    # -- helpers -----------------------------------------------------------------------------
    def _is_new(self, gist_id: str, updated: datetime | None) -> bool:
        if self._since is None:
            return True
        if updated is None:
            return False
        return updated > self._since or (updated == self._since and gist_id not in self._ids_at_since)

    def _advance(self, gist_id: str, raw: str, updated: datetime | None) -> None:
        if updated is None:
            return
        if self._newest is None or updated > self._newest:
            self._newest, self._newest_raw, self._newest_ids = updated, raw, {gist_id}
        elif updated == self._newest:
            self._newest_ids.add(gist_id)

    def _save_cursor(self) -> None:
        self.new_cursor["updated_at"] = self._newest_raw or None
        self.new_cursor["ids"] = sorted(self._newest_ids)[:_MAX_IDS]
        self.new_cursor["retry"] = list(self._retry.values())[:_MAX_RETRY]

    def _files_of(self, response: Response, gist: dict[str, Any]) -> Iterator[dict[str, Any]]:
        files = gist.get("files")
        if not isinstance(files, dict):
            return
        if gist.get("truncated"):
            self.logger.info("gist %s lists only its first files", gist.get("id"))
        owner = gist.get("owner")
        author = str(owner.get("login") or "") if isinstance(owner, dict) else ""
        published = str(gist.get("updated_at") or gist.get("created_at") or "")
        for key, meta in files.items():
            if not isinstance(meta, dict) or not meta.get("raw_url"):
                continue
            if _int(meta.get("size")) > MAX_FILE_BYTES or meta.get("truncated") is True:
                self.count("skipped_large")
                continue
            filename = str(meta.get("filename") or key)
            yield {
                "url": response.urljoin(str(meta["raw_url"])),
                "title": str(gist.get("description") or "").strip() or filename,
                "author": author,
                "published": published,
            }

    def _file_request(self, entry: dict[str, Any]) -> scrapy.Request:
        return scrapy.Request(
            entry["url"],
            callback=self.parse_file,
            errback=self.file_failed,
            cb_kwargs={"entry": entry},
            # The listing's size is the uploader's word; the download limit is the crawler's.
            meta={**self._proxy, "download_maxsize": MAX_FILE_BYTES},
            dont_filter=True,
        )


def _logged_by_retry(request: scrapy.Request, retry_times: int) -> bool:
    """Whether RetryMiddleware gave up on this request, which it logs as an ERROR (already counted)."""
    limit = int(request.meta.get("max_retry_times", retry_times))
    return int(request.meta.get("retry_times", 0)) >= limit


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _positive_int(value: Any, default: int) -> int:
    number = _int(value)
    return number if number > 0 else default
