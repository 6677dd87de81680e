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
from datetime import datetime
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from core.fetch_record import from_response
from core.posting import PostingDraft
from crawlers.spiders.base import SourceSpider, as_int, positive_int
from crawlers.spiders.html_text import parse_iso, proxy_meta

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


class GistsSpider(SourceSpider):
    name = "gists"

    async def start(self) -> AsyncIterator[Any]:
        self.max_pages = positive_int(self.options.get("max_pages"), DEFAULT_MAX_PAGES)
        self._since = parse_iso(self.cursor.get("updated_at"))
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
            meta={**proxy_meta(self.options), "handle_httpstatus_list": [304]},
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
            updated = parse_iso(gist.get("updated_at"))
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
                meta=proxy_meta(self.options),
            )

    def parse_file(self, response: Response, entry: dict[str, Any]) -> Iterator[Any]:
        self._retry.pop(entry["url"], None)
        self._save_cursor()
        yield PostingDraft(
            source=self.source_name,
            url=entry["url"],
            raw=response.body,
            encoding=getattr(response, "encoding", None),
            fetch=from_response(response),
            title=entry.get("title") or None,
            author=entry.get("author") or None,
            published=parse_iso(entry.get("published")),
        )

    def file_failed(self, failure: Failure) -> None:
        """Keep a file that failed for a transient reason, so the next run fetches it again."""
        self.keep_for_retry(failure, self._retry, "url", "gist file", _MAX_TRIES)
        self._save_cursor()

    def closed(self, reason: str) -> None:
        self.keep_old_cursor(reason, "etag")

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
            if as_int(meta.get("size")) > MAX_FILE_BYTES or meta.get("truncated") is True:
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
            meta={**proxy_meta(self.options), "download_maxsize": MAX_FILE_BYTES},
            dont_filter=True,
        )
