"""Loopback servers speaking the real formats of GitHub's gists API, Discourse's JSON API, RSS and Atom.

Standard library only (a `LoopbackServer`: ThreadingHTTPServer in a daemon thread, port 0), so a crawl in a
child process can read them. Every server logs request paths in ``requests`` (and their headers in
``headers``), answers ``/robots.txt`` with 404 (allow all), as a site without one does, and answers the
paths in ``fail`` with the status given there.

    with GistsApi() as api:
        add_source(db, "g", "gists", api.base_url)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leaksentinel.sim.server import LoopbackHandler, LoopbackServer

__all__ = [
    "DiscourseForum",
    "FeedSite",
    "FixtureServer",
    "GistsApi",
    "Reply",
]

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), headers=headers or {})


def _iso(when: datetime, millis: bool = False) -> str:
    if millis:
        return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


class FixtureServer(LoopbackServer):
    """The shared lifecycle and request log; subclasses answer ``route(path, query, headers)``."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[tuple[str, dict[str, str]]] = []
        #: path → HTTP status answered instead of the real page, until removed
        self.fail: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        """Known before the server is started too (port 0 until then): unit tests build feeds from it."""
        return f"http://{self.host}:{self.port}"

    def handle_get(self, request: LoopbackHandler) -> None:
        reply = self._handle(request.path, {k.lower(): v for k, v in request.headers.items()})
        if reply.status != 304:
            request.send_body(reply.status, reply.body, reply.content_type, reply.headers)
            return
        request.send_response(reply.status)
        for name, value in reply.headers.items():
            request.send_header(name, value)
        request.end_headers()

    def _handle(self, raw_path: str, headers: dict[str, str]) -> Reply:
        with self.lock:
            self.log_request(raw_path)
            self.headers.append((raw_path, headers))
            parts = urlsplit(raw_path)
            if parts.path == "/robots.txt":
                return Reply(404, b"not found", "text/plain")
            if parts.path in self.fail:
                return Reply(self.fail[parts.path], b'{"message":"Server Error"}')
            try:
                return self.route(parts.path, parse_qs(parts.query), headers)
            except KeyError:
                return Reply(404, b'{"message":"Not Found"}')

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        raise NotImplementedError

    @staticmethod
    def conditional(body: bytes, headers: dict[str, str], extra: dict[str, str]) -> Reply | None:
        """A 304 when the client's ``If-None-Match`` names this body's ETag."""
        tag = _etag(body)
        extra["ETag"] = tag
        if tag in [t.strip() for t in headers.get("if-none-match", "").split(",")]:
            return Reply(304, headers=extra)
        return None


# -- GitHub gists -----------------------------------------------------------------------------------


class GistsApi(FixtureServer):
    """``GET /gists/public?page=N`` (per_page 3, ``Link`` next/last, ETag and 304) and raw files.

    Raw files live at ``/<login>/<id>/raw/<sha>/<filename>``, as on gist.githubusercontent.com. One
    gist has a file listed above 5 MB and one a ``truncated`` file: a crawler must not fetch those.
    """

    PER_PAGE = 3

    def __init__(self) -> None:
        super().__init__()
        self.gists: list[dict[str, Any]] = []
        self.contents: dict[str, bytes] = {}
        self._seq = 0
        self.huge_path = ""
        self.truncated_path = ""
        owners = ["octo", "leakr", "octo", "ghost42", "leakr"]
        for i, owner in enumerate(owners):
            files = {
                f"notes{i}.txt": f"gist {i} notes\nuser{i}@example.com password{i}\n",
                f"config{i}.env": f"DB_PASSWORD=secret{i}\nAPI_KEY=key-{i:04d}\n",
            }
            if i == 2:
                files["dump.sql"] = "INSERT INTO users VALUES ('alice@example.org');\n"
            self.add_gist(owner, files, description="" if i == 1 else f"Gist number {i}", minutes=i)

    def add_gist(
        self, owner: str, files: dict[str, str], description: str = "", minutes: int | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self._seq += 1
            gist_id = hashlib.sha1(f"gist-{self._seq}".encode()).hexdigest()[:20]
            when = T0 + timedelta(minutes=self._seq if minutes is None else minutes)
            listed: dict[str, Any] = {}
            for name, text in files.items():
                sha = hashlib.sha1(text.encode()).hexdigest()
                path = f"/{owner}/{gist_id}/raw/{sha}/{name}"
                self.contents[path] = text.encode()
                listed[name] = {
                    "filename": name,
                    "type": "text/plain",
                    "language": "Text",
                    "raw_url": path,
                    "size": len(text.encode()),
                }
            gist = {
                "url": f"/gists/{gist_id}",
                "forks_url": f"/gists/{gist_id}/forks",
                "commits_url": f"/gists/{gist_id}/commits",
                "id": gist_id,
                "node_id": f"G_{gist_id}",
                "git_pull_url": f"https://gist.github.com/{gist_id}.git",
                "git_push_url": f"https://gist.github.com/{gist_id}.git",
                "html_url": f"https://gist.github.com/{owner}/{gist_id}",
                "files": listed,
                "public": True,
                "created_at": _iso(when),
                "updated_at": _iso(when),
                "description": description,
                "comments": 0,
                "user": None,
                "comments_url": f"/gists/{gist_id}/comments",
                "owner": {"login": owner, "id": 1000 + len(owner), "type": "User", "site_admin": False},
                "truncated": False,
            }
            if self._seq == 3:
                self.huge_path = self._extra_file(gist, owner, "huge.bin", size=6 * 1024 * 1024)
            if self._seq == 4:
                self.truncated_path = self._extra_file(gist, owner, "big.log", size=2000, truncated=True)
            self.gists.append(gist)
            return gist

    def _extra_file(
        self, gist: dict[str, Any], owner: str, name: str, size: int, truncated: bool = False
    ) -> str:
        path = f"/{owner}/{gist['id']}/raw/{'0' * 40}/{name}"
        self.contents[path] = b"should never be fetched"
        entry: dict[str, Any] = {
            "filename": name,
            "type": "text/plain",
            "language": None,
            "raw_url": path,
            "size": size,
        }
        if truncated:
            entry["truncated"] = True
        gist["files"][name] = entry
        return path

    def _render(self, gist: dict[str, Any]) -> dict[str, Any]:
        """Raw URLs are absolute on GitHub; the second gist's are relative, to be resolved by the crawler."""
        out = {**gist, "files": {}}
        for name, meta in gist["files"].items():
            relative = gist["id"] == self.gists[1]["id"]
            out["files"][name] = {
                **meta,
                "raw_url": meta["raw_url"] if relative else self.base_url + meta["raw_url"],
            }
        return out

    def expected_files(self) -> list[dict[str, Any]]:
        """One row per file the crawler should store: url, title, author, published, text."""
        rows = []
        for gist in self.gists:
            for name, meta in gist["files"].items():
                path = meta["raw_url"]
                if path in (self.huge_path, self.truncated_path):
                    continue
                rows.append(
                    {
                        "url": f"{self.base_url}{path}",
                        "title": gist["description"] or name,
                        "author": gist["owner"]["login"],
                        "published": gist["updated_at"],
                        "text": self.contents[path].decode(),
                    }
                )
        return rows

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if path == "/gists/public":
            ordered = sorted(self.gists, key=lambda g: str(g["updated_at"]), reverse=True)
            pages = max(1, -(-len(ordered) // self.PER_PAGE))
            page = int(query.get("page", ["1"])[0])
            chunk = ordered[(page - 1) * self.PER_PAGE : page * self.PER_PAGE]
            body = json.dumps([self._render(g) for g in chunk]).encode()
            link = f"{self.base_url}/gists/public?page="
            rels = []
            if page < pages:
                rels += [f'<{link}{page + 1}>; rel="next"', f'<{link}{pages}>; rel="last"']
            if page > 1:
                rels += [f'<{link}{page - 1}>; rel="prev"', f'<{link}1>; rel="first"']
            extra = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}
            if rels:
                extra["Link"] = ", ".join(rels)
            not_modified = self.conditional(body, headers, extra)
            return not_modified or Reply(200, body, headers=extra)
        return Reply(200, self.contents[path], "text/plain; charset=utf-8")


# -- Discourse --------------------------------------------------------------------------------------


class DiscourseForum(FixtureServer):
    """A Discourse forum under ``/forum``: ``latest.json`` (3 topics a page, ordered by bump,
    ``more_topics_url`` as ``/forum/latest?no_definitions=true&page=N``), ``/forum/t/SLUG/ID.json``
    (the first ``POSTS_IN_TOPIC`` posts and the whole ``stream``) and ``/forum/t/ID/posts.json``.
    """

    PER_PAGE = 3
    POSTS_IN_TOPIC = 3

    def __init__(self) -> None:
        super().__init__()
        self.topics: list[dict[str, Any]] = []
        self.posts: dict[int, list[dict[str, Any]]] = {}
        self._post_id = 100
        self._clock = T0
        titles = ["Selling fresh combo list", "Acme Corp database", "Help with config", "VPN creds", "Dump"]
        for i, title in enumerate(titles):
            topic_id = 10 + i
            slug = title.lower().replace(" ", "-")
            self.topics.append(
                {
                    "id": topic_id,
                    "title": title,
                    "fancy_title": title,
                    "slug": slug,
                    "posts_count": 0,
                    "reply_count": 0,
                    "highest_post_number": 0,
                    "image_url": None,
                    "created_at": _iso(self._tick(), True),
                    "last_posted_at": None,
                    "bumped": True,
                    "bumped_at": None,
                    "archetype": "regular",
                    "unseen": False,
                    "pinned": False,
                    "unpinned": None,
                    "visible": True,
                    "closed": False,
                    "archived": False,
                    "bookmarked": None,
                    "liked": None,
                    "views": 10 * i,
                    "like_count": 0,
                    "has_summary": False,
                    "last_poster_username": None,
                    "category_id": 1,
                    "pinned_globally": False,
                    "posters": [],
                }
            )
            self.posts[topic_id] = []
            for n in range(2 + i % 3):  # 2, 3 or 4 posts: some topics need a posts.json read
                self.add_reply(
                    topic_id,
                    f"user{(i + n) % 4}",
                    f"<p>Post {n + 1} of {title}: contact admin{i}{n}@acme.example</p>"
                    f"<script>alert('x{i}{n}')</script><ul><li>row one</li><li>row two</li></ul>",
                )

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=7)
        return self._clock

    def add_reply(self, topic_id: int, username: str, cooked: str) -> dict[str, Any]:
        """A new post at the end of a topic, which bumps the topic to the top of ``latest``."""
        with self.lock:
            topic = next(t for t in self.topics if t["id"] == topic_id)
            self._post_id += 1
            when = _iso(self._tick(), True)
            number = topic["highest_post_number"] + 1
            post = {
                "id": self._post_id,
                "name": username.title(),
                "username": username,
                "avatar_template": f"/user_avatar/forum/{username}/{{size}}/1_2.png",
                "created_at": when,
                "cooked": cooked,
                "post_number": number,
                "post_type": 1,
                "updated_at": when,
                "reply_count": 0,
                "reply_to_post_number": None,
                "quote_count": 0,
                "incoming_link_count": 0,
                "reads": 1,
                "score": 0,
                "yours": False,
                "topic_id": topic_id,
                "topic_slug": topic["slug"],
                "version": 1,
                "user_id": 1 + sum(map(ord, username)) % 50,
                "trust_level": 1,
                "deleted_at": None,
                "user_deleted": False,
            }
            self.posts[topic_id].append(post)
            topic.update(
                highest_post_number=number,
                posts_count=len(self.posts[topic_id]),
                reply_count=len(self.posts[topic_id]) - 1,
                last_posted_at=when,
                bumped_at=when,
                last_poster_username=username,
            )
            return post

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if path == "/forum/latest.json":
            ordered = sorted(self.topics, key=lambda t: str(t["bumped_at"]), reverse=True)
            page = int(query.get("page", ["0"])[0])  # Discourse pages count from 0
            chunk = ordered[page * self.PER_PAGE : (page + 1) * self.PER_PAGE]
            topic_list: dict[str, Any] = {
                "can_create_topic": False,
                "per_page": self.PER_PAGE,
                "top_tags": [],
                "topics": chunk,
            }
            if (page + 1) * self.PER_PAGE < len(ordered):
                topic_list["more_topics_url"] = f"/forum/latest?no_definitions=true&page={page + 1}"
            users = [{"id": 1, "username": "system", "name": "system", "avatar_template": "/x.png"}]
            return _json({"users": users, "primary_groups": [], "flair_groups": [], "topic_list": topic_list})
        parts = path.removeprefix("/forum/t/").removesuffix(".json").split("/")
        if path.startswith("/forum/t/") and path.endswith("/posts.json"):
            topic_id = int(parts[0])
            wanted = {int(v) for v in query.get("post_ids[]", [])}
            posts = [p for p in self.posts[topic_id] if p["id"] in wanted]
            return _json({"post_stream": {"posts": posts}, "id": topic_id})
        if path.startswith("/forum/t/") and path.endswith(".json"):
            topic_id = int(parts[-1])
            topic = next(t for t in self.topics if t["id"] == topic_id)
            posts = self.posts[topic_id]
            data = {
                "post_stream": {
                    "posts": posts[: self.POSTS_IN_TOPIC],
                    "stream": [p["id"] for p in posts],
                },
                "timeline_lookup": [],
                "tags": [],
                "id": topic_id,
                "title": topic["title"],
                "fancy_title": topic["fancy_title"],
                "posts_count": topic["posts_count"],
                "created_at": topic["created_at"],
                "views": topic["views"],
                "reply_count": topic["reply_count"],
                "like_count": 0,
                "last_posted_at": topic["last_posted_at"],
                "visible": True,
                "closed": False,
                "archived": False,
                "archetype": "regular",
                "slug": topic["slug"],
                "category_id": 1,
                "highest_post_number": topic["highest_post_number"],
                "chunk_size": 20,
            }
            return _json(data)
        raise KeyError(path)


# -- RSS and Atom -----------------------------------------------------------------------------------


class FeedSite(FixtureServer):
    """``/rss.xml`` (RSS 2.0 with ``content:encoded``), ``/atom.xml`` (summary-only Atom entries that
    link to ``/articles/N.html``), both with ETag and Last-Modified and 304; ``/hostile.xml`` (an
    external entity pointing at ``secret_path``), ``/bomb.xml`` (billion laughs) and ``/broken.xml``.
    """

    def __init__(self, secret_path: str = "/nonexistent") -> None:
        super().__init__()
        self.secret_path = secret_path
        self.rss_items: list[dict[str, str]] = []
        self.atom_entries: list[dict[str, str]] = []
        self.articles: dict[str, str] = {}
        self.modified = T0
        for i in range(4):
            when = T0 + timedelta(hours=i)
            self.rss_items.append(
                {
                    "title": f"Leak digest #{i}",
                    "path": f"/news/{i}",
                    "guid": f"urn:digest:{i}",
                    "author": f"editor{i}@news.example (Editor {i})",
                    "published": format_datetime(when),
                    "iso": when.isoformat(),
                    "content": f"<p>Digest {i}: dump of shop{i}.example</p><p>alice{i}@shop{i}.example</p>",
                }
            )
        for i in range(3):
            self.add_entry(f"Article {i}", minutes=30 * i)

    def add_entry(self, title: str, minutes: int | None = None) -> dict[str, str]:
        """An Atom entry (summary only) and the HTML page it links to; the feed changes."""
        with self.lock:
            n = len(self.atom_entries)
            when = T0 + timedelta(minutes=30 * n if minutes is None else minutes)
            path = f"/articles/{n}.html"
            self.articles[path] = (
                "<!DOCTYPE html><html><head><title>page title</title><style>body{color:red}</style>"
                f"<script>var tracker{n}=1;</script></head><body><h1>{title}</h1>"
                f"<p>Full text of article {n}.</p><p>bob{n}@corp.example leaked</p></body></html>"
            )
            entry = {
                "title": title,
                "path": path,
                "id": f"tag:feeds.example,2024:entry-{n}",
                "author": f"writer{n}",
                "updated": _iso(when),
                "iso": when.isoformat(),
                "summary": f"Summary of article {n} only.",
                "text": f"{title}\nFull text of article {n}.\nbob{n}@corp.example leaked",
            }
            self.atom_entries.append(entry)
            self.modified = max(self.modified, when) + timedelta(seconds=1)
            return entry

    def rss(self) -> bytes:
        items = "".join(
            f"<item><title>{it['title']}</title><link>{self.base_url}{it['path']}</link>"
            f'<guid isPermaLink="false">{it["guid"]}</guid><pubDate>{it["published"]}</pubDate>'
            f"<author>{it['author']}</author><description>short {it['title']}</description>"
            f"<content:encoded><![CDATA[{it['content']}]]></content:encoded></item>"
            for it in self.rss_items
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Leak news</title>'
            f"<link>{self.base_url}/</link><description>news</description>{items}</channel></rss>"
        ).encode()

    def atom(self) -> bytes:
        entries = "".join(
            f'<entry><title type="text">{e["title"]}</title>'
            f'<link rel="alternate" type="text/html" href="{e["path"]}"/>'
            f'<link rel="edit" href="/edit/{e["id"][-1]}"/>'
            f"<id>{e['id']}</id><updated>{e['updated']}</updated>"
            f"<author><name>{e['author']}</name></author><summary>{e['summary']}</summary></entry>"
            for e in reversed(self.atom_entries)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Articles</title><id>tag:feeds.example,2024:feed</id><updated>{_iso(self.modified)}</updated>"
            f"{entries}</feed>"
        ).encode()

    def hostile(self) -> bytes:
        """An external entity naming a local file (XXE) and an internal one: neither is expanded."""
        return (
            '<?xml version="1.0"?>\n'
            f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{self.secret_path}"><!ENTITY word "expanded">]>'
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            "<title>Hostile</title><item><title>Hostile &xxe; item</title>"
            f"<link>{self.base_url}/hostile-item</link><guid>hostile-1</guid>"
            "<pubDate>Wed, 01 May 2024 12:00:00 GMT</pubDate>"
            "<content:encoded>Before &xxe; after &word; end</content:encoded></item></channel></rss>"
        ).encode()

    @staticmethod
    def entity_bomb() -> bytes:
        """The "billion laughs": 10^9 "lol"s from a few hundred bytes."""
        lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
        return (
            f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY lol0 "lol">{lol}]>'
            "<rss><channel><item><title>&lol9;</title><guid>bomb</guid></item></channel></rss>"
        ).encode()

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        feeds: dict[str, Callable[[], bytes]] = {"/rss.xml": self.rss, "/atom.xml": self.atom}
        if path in feeds:
            body = feeds[path]()
            kind = "application/rss+xml" if path == "/rss.xml" else "application/atom+xml"
            extra = {"Last-Modified": format_datetime(self.modified, usegmt=True)}
            not_modified = self.conditional(body, headers, extra)
            return not_modified or Reply(200, body, f"{kind}; charset=utf-8", extra)
        if path == "/hostile.xml":
            return Reply(200, self.hostile(), "application/rss+xml")
        if path == "/bomb.xml":
            return Reply(200, self.entity_bomb(), "application/rss+xml")
        if path == "/broken.xml":
            return Reply(200, b"<?xml version='1.0'?><rss><channel><item><title>oops</channel>", "text/xml")
        if path in self.articles:
            return Reply(200, self.articles[path].encode(), "text/html; charset=utf-8")
        if path.startswith("/news/") or path == "/hostile-item":
            return Reply(200, b"<html><body>linked page</body></html>", "text/html")
        raise KeyError(path)
