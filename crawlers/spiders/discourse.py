"""A Discourse forum's JSON API: ``URL/latest.json`` (``more_topics_url`` pages), then ``URL/t/SLUG/ID.json``.

Why these rules: ``latest`` is ordered by last activity, so a run reads listing pages only while they
hold a topic that changed since the cursor, and reads a topic only when its ``highest_post_number``
grew; in a changed topic only posts above the remembered post number become postings. A topic's JSON
carries its first posts and the ids of all (``post_stream.stream``); newer ids missing from it are read
from ``URL/t/ID/posts.json?post_ids[]=...``. A topic is remembered only once all its new posts were
read; a topic whose read failed is kept in the cursor's ``retry`` and read first next run.

Cursor: ``{"topics": {"<id>": {"n": highest post number read, "p": highest post id read,
"t": last_posted_at}}, "retry": {"<id>": slug}}``, the ``MAX_TOPICS`` most recently active topics.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from core.fetch_record import from_response
from core.posting import PostingDraft
from crawlers.spiders.base import GONE, SourceSpider, as_int, failure_status, positive_int
from crawlers.spiders.html_text import html_to_lines, parse_iso, proxy_meta

#: Cooked post HTML to text (kept under the name the tests and older callers import).
_html_to_text = html_to_lines

__all__ = ["MAX_TOPICS", "DiscourseSpider", "json_listing_url"]

MAX_TOPICS = 5000
DEFAULT_MAX_PAGES = 10
POSTS_PER_REQUEST = 20
_HEADERS = {"Accept": "application/json"}


def json_listing_url(url: str) -> str:
    """``/latest?no_definitions=true&page=1`` → ``/latest.json?no_definitions=true&page=1``."""
    parts = urlsplit(url)
    path = parts.path if parts.path.endswith(".json") else parts.path.rstrip("/") + ".json"
    return urlunsplit(parts._replace(path=path))


class DiscourseSpider(SourceSpider):
    name = "discourse"

    async def start(self) -> AsyncIterator[Any]:
        self.max_pages = positive_int(self.options.get("max_pages"), DEFAULT_MAX_PAGES)
        seen = self.cursor.get("topics")
        self._seen: dict[str, dict[str, Any]] = {
            str(k): v for k, v in (seen.items() if isinstance(seen, dict) else ()) if isinstance(v, dict)
        }
        self._topics: dict[str, dict[str, Any]] = dict(self._seen)
        self._queued: set[str] = set()
        self._pending: dict[str, int] = {}
        self._failed: set[str] = set()
        retry = self.cursor.get("retry")
        self._retry: dict[str, str] = {
            str(k): str(v) for k, v in (retry.items() if isinstance(retry, dict) else ())
        }
        self._save_cursor()
        for topic_id, slug in list(self._retry.items()):
            self._queued.add(topic_id)
            yield self._topic_request(topic_id, slug, {})
        yield scrapy.Request(
            f"{self.base_url}/latest.json",
            headers=_HEADERS,
            callback=self.parse_latest,
            cb_kwargs={"page": 1},
            dont_filter=True,
            meta=proxy_meta(self.options),
        )

    def parse_latest(self, response: Response, page: int) -> Iterator[Any]:
        data = self._json(response)
        topic_list = data.get("topic_list") if data else None
        if not isinstance(topic_list, dict) or not isinstance(topic_list.get("topics"), list):
            if data is not None:
                self.logger.warning("%s has no topic_list.topics", response.url)
                self.count("errors")
            return
        changed = 0
        for topic in topic_list["topics"]:
            if not isinstance(topic, dict) or as_int(topic.get("id")) <= 0:
                continue
            topic_id = str(as_int(topic["id"]))
            if topic_id in self._queued or not self._changed(topic_id, topic):
                continue
            changed += 1
            self._queued.add(topic_id)
            yield self._topic_request(topic_id, quote(str(topic.get("slug") or "topic"), safe="%"), topic)
        # Latest is ordered by activity: a page with no changed topic means the rest are unchanged too.
        more = topic_list.get("more_topics_url")
        if changed and isinstance(more, str) and more and page < self.max_pages:
            yield scrapy.Request(
                response.urljoin(json_listing_url(more)),
                headers=_HEADERS,
                callback=self.parse_latest,
                cb_kwargs={"page": page + 1},
                dont_filter=True,
                meta=proxy_meta(self.options),
            )

    def parse_topic(
        self, response: Response, topic_id: str, slug: str, listed: dict[str, Any]
    ) -> Iterator[Any]:
        data = self._json(response)
        stream_obj = data.get("post_stream") if data else None
        if not isinstance(stream_obj, dict) or not isinstance(stream_obj.get("posts"), list):
            if data is not None:
                self.logger.warning("%s has no post_stream.posts", response.url)
                self.count("errors")
            return
        assert data is not None
        title = str(data.get("title") or listed.get("title") or "") or None
        seen = self._seen.get(topic_id, {})
        posts = [p for p in stream_obj["posts"] if isinstance(p, dict)]
        have = {as_int(p.get("id")) for p in posts}
        # Post ids grow with time across the forum: ids above the highest one read are the new posts.
        missing = [
            i
            for i in (as_int(x) for x in stream_obj.get("stream") or [])
            if i > 0 and i not in have and i > as_int(seen.get("p"))
        ]
        entry = {
            "n": as_int(data.get("highest_post_number") or listed.get("highest_post_number")),
            "p": max([as_int(seen.get("p")), *have, *missing]),
            "t": str(
                data.get("last_posted_at") or listed.get("last_posted_at") or listed.get("bumped_at") or ""
            ),
        }
        if not entry["n"]:
            entry["n"] = max([0, *(as_int(p.get("post_number")) for p in posts)])
        yield from self._postings(response, posts, topic_id, slug, title, seen)
        chunks = [missing[i : i + POSTS_PER_REQUEST] for i in range(0, len(missing), POSTS_PER_REQUEST)]
        if not chunks:
            self._remember(topic_id, entry)
            return
        self._pending[topic_id] = len(chunks)
        for chunk in chunks:
            query = "&".join(f"post_ids[]={i}" for i in chunk)
            yield scrapy.Request(
                f"{self.base_url}/t/{topic_id}/posts.json?{query}",
                headers=_HEADERS,
                callback=self.parse_posts,
                errback=self.topic_failed,
                cb_kwargs={"topic_id": topic_id, "slug": slug, "title": title, "entry": entry},
                dont_filter=True,
                meta=proxy_meta(self.options),
            )

    def parse_posts(
        self, response: Response, topic_id: str, slug: str, title: str | None, entry: dict[str, Any]
    ) -> Iterator[Any]:
        data = self._json(response)
        stream_obj = data.get("post_stream") if data else None
        if not isinstance(stream_obj, dict) or not isinstance(stream_obj.get("posts"), list):
            self._failed.add(topic_id)
            self._retry[topic_id] = slug
            self._save_cursor()
            if data is not None:
                self.logger.warning("%s has no post_stream.posts", response.url)
                self.count("errors")
            return
        posts = [p for p in stream_obj["posts"] if isinstance(p, dict)]
        yield from self._postings(response, posts, topic_id, slug, title, self._seen.get(topic_id, {}))
        self._pending[topic_id] -= 1
        if self._pending[topic_id] == 0 and topic_id not in self._failed:
            self._remember(topic_id, entry)

    def topic_failed(self, failure: Failure) -> None:
        """The topic stays as the cursor had it and is read again next run (unless it is gone)."""
        request = failure.request  # type: ignore[attr-defined]
        topic_id, slug = request.cb_kwargs["topic_id"], request.cb_kwargs["slug"]
        self._failed.add(topic_id)
        self.logger.warning("topic %s: %s failed: %s", topic_id, request.url, failure.getErrorMessage())
        if failure_status(failure) in GONE:
            self._retry.pop(topic_id, None)
        else:
            self._retry[topic_id] = slug
            self.count_failure(request)
        self._save_cursor()

    def closed(self, reason: str) -> None:
        """Keep the cursor bounded: the most recently active topics only."""
        if len(self._topics) > MAX_TOPICS:
            recent = sorted(self._topics.items(), key=lambda kv: str(kv[1].get("t") or ""), reverse=True)
            self._topics = dict(recent[:MAX_TOPICS])
        self._save_cursor()

    # -- helpers -----------------------------------------------------------------------------
    def _changed(self, topic_id: str, topic: dict[str, Any]) -> bool:
        seen = self._seen.get(topic_id)
        if seen is None:
            return True
        highest = as_int(topic.get("highest_post_number"))
        if highest:
            return highest > as_int(seen.get("n"))
        last = str(topic.get("last_posted_at") or topic.get("bumped_at") or "")
        return bool(last) and last != seen.get("t")

    def _remember(self, topic_id: str, entry: dict[str, Any]) -> None:
        self._topics[topic_id] = entry
        self._retry.pop(topic_id, None)
        self._save_cursor()

    def _save_cursor(self) -> None:
        self.new_cursor = {"topics": self._topics, "retry": self._retry}

    def _topic_request(self, topic_id: str, slug: str, listed: dict[str, Any]) -> scrapy.Request:
        return scrapy.Request(
            f"{self.base_url}/t/{slug}/{topic_id}.json",
            headers=_HEADERS,
            callback=self.parse_topic,
            errback=self.topic_failed,
            cb_kwargs={"topic_id": topic_id, "slug": slug, "listed": listed},
            dont_filter=True,
            meta=proxy_meta(self.options),
        )

    def _postings(
        self,
        response: Response,
        posts: list[dict[str, Any]],
        topic_id: str,
        slug: str,
        title: str | None,
        seen: dict[str, Any],
    ) -> Iterator[PostingDraft]:
        above = as_int(seen.get("n"))
        for post in posts:
            number = as_int(post.get("post_number"))
            cooked = post.get("cooked")
            # post_type 3 is a "small action" (closed, pinned...): no text of anyone's.
            if number <= above or as_int(post.get("post_type")) == 3 or not isinstance(cooked, str):
                continue
            yield PostingDraft(
                source=self.source_name,
                url=f"{self.base_url}/t/{slug}/{topic_id}/{number}",
                raw=cooked.encode("utf-8"),
                text=html_to_lines(cooked),
                title=title,
                author=str(post.get("username") or "") or None,
                published=parse_iso(post.get("created_at")),
                fetch=from_response(response),
            )

    def _json(self, response: Response) -> dict[str, Any] | None:
        try:
            data = json.loads(response.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.logger.warning("%s is not a JSON object: %r", response.url, response.body[:200])
            self.count("errors")
            return None
        return data
