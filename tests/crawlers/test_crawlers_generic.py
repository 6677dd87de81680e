"""The generic spider against a loopback site: item mode, link mode, pagination and the seen-set."""

from __future__ import annotations

from typing import Any

from forum_fixtures import T0, Entry, Expected, GenericSite
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.html_text import html_to_text, parse_datetime
from leaksentinel.actions.sources import add_source


def _stored(db: Any, source: str) -> dict[str, Posting]:
    with db.session() as sess:
        src = sess.scalar(select(Source).where(Source.name == source))
        return {p.url: p for p in sess.scalars(select(Posting).where(Posting.source_id == src.id))}


def _check(row: Posting, want: Expected) -> None:
    assert (row.title, row.author, row.text) == (want.title, want.author, want.text)
    if want.published is None:
        assert row.published is None
    else:
        assert row.published is not None and row.published.timestamp() == want.published.timestamp()


def test_html_to_text_drops_scripts_and_breaks_blocks() -> None:
    page = (
        "<html><head><title>t</title><style>p{}</style></head><body><div>One <b>two</b>\n  three<br>four"
        "<script>x()</script><noscript>js!</noscript></div><ul><li>a</li><li>b</li></ul>"
        "<pre>x  y\nz</pre><table><tr><td>1</td><td>2</td></tr></table>&nbsp;end</body></html>"
    )
    assert html_to_text(page) == "One two three\nfour\na\nb\nx y\nz\n1 2\nend"
    assert parse_datetime("2024-03-01T10:00:00+0100") == parse_datetime("2024-03-01T09:00:00Z")
    assert parse_datetime("not a date") is None


def test_item_mode_reads_every_item_on_every_page() -> None:
    settings = load_settings()
    db = open_database(settings)
    with GenericSite() as site:
        options = {"item": "div.entry", "next": "a.next", "author": ".byline"}
        add_source(db, "board", "generic", site.board_url, options=options)
        first = run_crawl(settings, "board")
        assert first["status"] == "ok" and first["errors"] == 0, first
        expected = site.expected_board()
        assert first["new"] == len(expected) == 4
        stored = _stored(db, "board")
        assert set(stored) == set(expected)
        for url, want in expected.items():
            _check(stored[url], want)
        assert f"{site.board_url}?page=2#2" in stored  # the entry without an id: its index

        site.requests.clear()
        second = run_crawl(settings, "board")
        assert second["status"] == "ok" and second["new"] == 0 and second["postings"] == 0, second
        assert site.paths("/board/") == ["/board/"]


def test_link_mode_follows_links_once() -> None:
    settings = load_settings()
    db = open_database(settings)
    with GenericSite() as site:
        options = {
            "link": "a.paste-link",
            "content": "pre.paste",
            "next": "a[rel=next]",
            "author": ".paste-author",
        }
        add_source(db, "pasty", "generic", site.pastes_url, options=options)
        first = run_crawl(settings, "pasty")
        assert first["status"] == "ok" and first["errors"] == 0, first
        expected = site.expected_pastes()
        assert first["new"] == len(expected) == 5
        stored = _stored(db, "pasty")
        assert set(stored) == set(expected)
        for url, want in expected.items():
            _check(stored[url], want)
        assert site.paths("/pastes/?page=2")

        site.requests.clear()
        second = run_crawl(settings, "pasty")
        assert second["status"] == "ok" and second["new"] == 0 and second["postings"] == 0, second
        assert site.paths("/pastes/") == ["/pastes/"]

        site.publish(Entry("k9", "Paste 9", "newbie", T0, ["sk_live_abc123"]))
        site.requests.clear()
        third = run_crawl(settings, "pasty")
        assert third["status"] == "ok" and third["new"] == 1, third
        assert site.paths("/pastes/p/") == ["/pastes/p/k9"]
        _check(
            _stored(db, "pasty")[f"{site.base_url}/pastes/p/k9"],
            site.expected_pastes()[f"{site.base_url}/pastes/p/k9"],
        )
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "pasty"))
            assert source is not None and len(source.cursor["seen"]) == 6
