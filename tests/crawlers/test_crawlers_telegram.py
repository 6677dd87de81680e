"""The Telegram spider against a loopback t.me/s/ channel preview: paging back, the cursor, max_pages."""

from __future__ import annotations

from typing import Any

from forum_fixtures import TelegramSite
from scrapy.http import HtmlResponse, Request
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.posting import PostingDraft
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.telegram import TelegramSpider, preview_url
from leaksentinel.actions.sources import add_source


def _stored(db: Any) -> dict[str, Posting]:
    with db.session() as sess:
        return {p.url: p for p in sess.scalars(select(Posting))}


def test_preview_url() -> None:
    assert preview_url("https://t.me/leakchan") == "https://t.me/s/leakchan"
    assert preview_url("https://t.me/s/leakchan/") == "https://t.me/s/leakchan"


def test_crawl_pages_back_then_reads_only_new_messages() -> None:
    settings = load_settings()
    db = open_database(settings)
    with TelegramSite() as site:
        add_source(db, "chan", "telegram", site.channel_url)
        first = run_crawl(settings, "chan")
        assert first["status"] == "ok" and first["errors"] == 0, first
        expected = site.expected()
        assert first["new"] == first["postings"] == len(expected) == 10
        # Three pages: the newest, then before=9 (via link[rel=prev]), then before=3 (via data-before).
        assert site.paths("/s/leakchan") == ["/s/leakchan", "/s/leakchan?before=9", "/s/leakchan?before=3"]
        stored = _stored(db)
        assert set(stored) == set(expected)
        for url, want in expected.items():
            row = stored[url]
            assert (row.title, row.author, row.text) == (want.title, want.author, want.text)
            assert row.published is not None and want.published is not None
            assert row.published.timestamp() == want.published.timestamp()
        # A reply's quote of an older message is not part of the reply's text.
        assert stored[f"{site.base_url}/leakchan/10"].text == "Mirror is up again"

        site.requests.clear()
        second = run_crawl(settings, "chan")
        assert second["status"] == "ok" and second["new"] == 0 and second["postings"] == 0, second
        assert site.paths("/s/") == ["/s/leakchan"]

        a, b = site.post("fresh: bob@example.net:qwerty"), site.post("one more")
        site.requests.clear()
        third = run_crawl(settings, "chan")
        assert third["status"] == "ok" and third["new"] == third["postings"] == 2, third
        assert site.paths("/s/") == ["/s/leakchan"]
        assert _stored(db)[f"{site.base_url}/leakchan/{a.id}"].text == "fresh: bob@example.net:qwerty"
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "chan"))
            assert source is not None and source.cursor == {"newest": b.id}


def test_max_pages_bounds_the_paging_back() -> None:
    """Checked on the spider itself: crawlers.run also maps ``max_pages`` to Scrapy's page budget."""
    site = TelegramSite()
    page = site.route("/s/leakchan", {})
    response = HtmlResponse(url="https://t.me/s/leakchan", body=page.body, encoding="utf-8")
    spider = TelegramSpider(
        source_name="chan", source_url="https://t.me/s/leakchan", options={"max_pages": 2}
    )
    first = list(spider.parse_page(response, page=1))
    follow = [r for r in first if isinstance(r, Request)]
    assert [r.url for r in follow] == ["https://t.me/s/leakchan?before=9"]
    assert len([d for d in first if isinstance(d, PostingDraft)]) == 5
    assert [r for r in spider.parse_page(response, page=2) if isinstance(r, Request)] == []
    assert spider.new_cursor == {"newest": 13}
    # With a cursor at 11 only the two newer messages are drafts, and paging stops there.
    seen = TelegramSpider(source_name="chan", source_url="https://t.me/s/leakchan", cursor={"newest": 11})
    out = list(seen.parse_page(response, page=1))
    assert [d.url for d in out if isinstance(d, PostingDraft)] == [
        "https://t.me/leakchan/12",
        "https://t.me/leakchan/13",
    ]
    assert not [r for r in out if isinstance(r, Request)]
