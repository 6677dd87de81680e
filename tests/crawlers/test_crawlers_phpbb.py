"""The phpBB spider against a loopback prosilver board: every post, a GBK topic, and incremental runs."""

from __future__ import annotations

from datetime import UTC, datetime

from forum_fixtures import CN_ID, CN_PHONE, Expected, PhpbbSite
from scrapy.http import HtmlResponse
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.posting import PostingDraft
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.phpbb import PhpbbSpider, canonical, topic_key
from leaksentinel.actions.sources import add_source


def _stored(db: object) -> dict[str, Posting]:
    with db.session() as sess:  # type: ignore[attr-defined]
        return {p.url: p for p in sess.scalars(select(Posting))}


def _check(row: Posting, want: Expected) -> None:
    assert row.title == want.title
    assert row.author == want.author
    assert row.published is not None and want.published is not None
    assert row.published.timestamp() == want.published.timestamp()
    assert row.text == want.text


def test_topic_urls_lose_their_session_id_and_key_by_topic() -> None:
    url = "http://h/forum/viewtopic.php?t=7&sid=0123abcd&start=25#p9"
    assert canonical(url) == "http://h/forum/viewtopic.php?t=7&start=25"
    assert topic_key(url) == topic_key("http://h/forum/viewtopic.php?f=2&t=7") == "t=7"


def test_crawl_reads_every_post_then_only_what_changed() -> None:
    settings = load_settings()
    db = open_database(settings)
    with PhpbbSite() as site:
        add_source(db, "board", "phpbb", site.forum_url)
        first = run_crawl(settings, "board")
        assert first["status"] == "ok" and first["errors"] == 0, first
        expected = site.expected()
        assert first["new"] == first["postings"] == len(expected) == 10
        stored = _stored(db)
        assert set(stored) == set(expected)
        for url, want in expected.items():
            _check(stored[url], want)
        # Both listing pages and both pages of topic 1 were read; session ids never reach a URL.
        assert site.paths("viewforum.php?f=2&start=2") and site.paths("viewtopic.php?t=1&start=3")
        assert not [u for u in stored if "sid=" in u]
        # The GBK page comes out as Chinese, with its ID number and phone intact.
        gbk = next(r for r in stored.values() if r.author == "李雷")
        assert gbk.title == "内部员工信息泄露" and CN_ID in gbk.text and CN_PHONE in gbk.text
        assert "姓名：张伟" in gbk.text

        # Nothing changed: no topic page is fetched, listing page 2 neither, nothing new is stored.
        site.requests.clear()
        second = run_crawl(settings, "board")
        assert second["status"] == "ok" and second["new"] == 0 and second["postings"] == 0, second
        assert site.paths("viewtopic.php") == []
        assert site.paths("viewforum.php") == ["/forum/viewforum.php?f=2"]

        # A reply to the two-page topic: only its last page is read again, and only the reply is new.
        reply = site.add_reply(1, "dave", ["Mirror is down, reupload please."])
        site.requests.clear()
        third = run_crawl(settings, "board")
        assert third["status"] == "ok" and third["new"] == 1, third
        assert site.paths("viewtopic.php") == ["/forum/viewtopic.php?t=1&start=3"]
        url = f"{site.base_url}/forum/viewtopic.php?t=1&start=3#p{reply.id}"
        _check(_stored(db)[url], site.expected()[url])

        # The topic is pruned to two posts and gets a reply: the page it was left at is gone (404), so the
        # topic is read again from its first page.
        site.delete_posts(1, keep=2)
        pruned = site.add_reply(1, "erin", ["Reposted after the cleanup."])
        site.requests.clear()
        fourth = run_crawl(settings, "board")
        assert fourth["status"] == "ok" and fourth["new"] == 1 and fourth["errors"] == 0, fourth
        assert site.paths("viewtopic.php") == ["/forum/viewtopic.php?t=1&start=3", "/forum/viewtopic.php?t=1"]
        assert f"{site.base_url}/forum/viewtopic.php?t=1#p{pruned.id}" in _stored(db)
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "board"))
            assert source is not None
            assert set(source.cursor["topics"]) == {"t=1", "t=2", "t=3", "t=4"}


def test_phpbb_30_markup_without_time_elements() -> None:
    """phpBB 3.0 prosilver: no ``<time>``, no ``username`` class on a plain member link."""
    page = (
        '<html><body><h2><a href="./viewtopic.php?f=2&amp;t=5">Old board topic</a></h2>'
        '<div id="p77" class="post bg2"><div class="inner"><span class="corners-top"><span></span></span>'
        '<div class="postbody"><h3 class="first"><a href="#p77">Old board topic</a></h3>'
        '<p class="author"><a href="./viewtopic.php?p=77#p77"><img src="./styles/prosilver/imageset/icon_post_target.gif" '
        'alt="Post" /></a>by <strong><a href="./memberlist.php?mode=viewprofile&amp;u=2">oldtimer</a></strong> '
        "&raquo; Fri Mar 01, 2024 10:00 am </p>"
        '<div class="content">Legacy dump<br />line two</div></div></div></div></body></html>'
    )
    response = HtmlResponse(
        url="http://h/viewtopic.php?f=2&t=5&sid=abc", body=page.encode(), encoding="utf-8"
    )
    spider = PhpbbSpider(source_name="b", source_url="http://h/viewforum.php?f=2")
    drafts = [
        d for d in spider.parse_topic(response, key="t=5", sig="", title="") if isinstance(d, PostingDraft)
    ]
    assert len(drafts) == 1
    draft = drafts[0]
    assert draft.url == "http://h/viewtopic.php?f=2&t=5#p77"
    assert (draft.author, draft.text) == ("oldtimer", "Legacy dump\nline two")
    assert draft.published == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert spider.new_cursor["topics"]["t=5"]["last"] == "http://h/viewtopic.php?f=2&t=5"
