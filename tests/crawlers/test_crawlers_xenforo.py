"""The XenForo spider against a loopback XenForo 2 board: every post, prefixes, incremental runs."""

from __future__ import annotations

from typing import Any

from forum_fixtures import Expected, XenforoSite
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.xenforo import thread_key
from leaksentinel.actions.sources import add_source


def _stored(db: Any) -> dict[str, Posting]:
    with db.session() as sess:
        return {p.url: p for p in sess.scalars(select(Posting))}


def _check(row: Posting, want: Expected) -> None:
    assert row.title == want.title
    assert row.author == want.author
    assert row.published is not None and want.published is not None
    assert row.published.timestamp() == want.published.timestamp()
    assert row.text == want.text


def test_thread_key_ignores_pages_and_slugs() -> None:
    assert thread_key("https://x/forum/threads/some-title.42/page-3") == "thread-42"
    assert thread_key("https://x/threads/42/") == "thread-42"
    assert thread_key("https://x/threads/other-slug.42/post-9") == "thread-42"


def test_crawl_reads_every_post_then_only_what_changed() -> None:
    settings = load_settings()
    db = open_database(settings)
    with XenforoSite() as site:
        add_source(db, "xf", "xenforo", site.forum_url)
        first = run_crawl(settings, "xf")
        assert first["status"] == "ok" and first["errors"] == 0, first
        expected = site.expected()
        assert first["new"] == first["postings"] == len(expected) == 9
        stored = _stored(db)
        assert set(stored) == set(expected)
        for url, want in expected.items():
            _check(stored[url], want)
        # The prefix label is not the thread, nor part of its title; signatures are not post text.
        assert not site.paths("prefix_id")
        assert all("signature" not in row.text for row in stored.values())
        assert site.paths("/forums/leaks.5/page-2") and site.paths("fresh-combo-list-2024.11/page-2")

        site.requests.clear()
        second = run_crawl(settings, "xf")
        assert second["status"] == "ok" and second["new"] == 0 and second["postings"] == 0, second
        assert site.paths("/threads/") == []
        assert site.paths("/forums/") == ["/community/forums/leaks.5/"]

        reply = site.add_reply(11, "mallory", ["New mirror up, same password."])
        site.requests.clear()
        third = run_crawl(settings, "xf")
        assert third["status"] == "ok" and third["new"] == 1, third
        assert site.paths("/threads/") == ["/community/threads/fresh-combo-list-2024.11/page-2"]
        url = f"{site.base_url}/community/threads/fresh-combo-list-2024.11/page-2#post-{reply.id}"
        _check(_stored(db)[url], site.expected()[url])
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "xf"))
            assert source is not None
            assert set(source.cursor["threads"]) == {"thread-10", "thread-11", "thread-12", "thread-13"}
