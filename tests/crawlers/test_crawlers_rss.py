"""The rss spider against loopback feeds: RSS 2.0 with full content, Atom with summaries whose pages
are followed, conditional GETs, the cursor, hostile XML (XXE, entity bombs) and malformed feeds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from api_fixtures import FeedSite, FixtureServer, Reply
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.rss import FeedError, parse_feed
from leaksentinel.actions.sources import add_source

SECRET = "TOP-SECRET-FILE-CONTENT-4242"


def test_parse_feed_reads_rss_and_atom() -> None:
    with FeedSite() as site:
        assert isinstance(site, FeedSite)
        title, items = parse_feed(site.rss())
        assert title == "Leak news" and len(items) == 4
        assert items[0].content.startswith("<p>Digest 0") and items[0].guid == "urn:digest:0"
        assert items[0].published == "2024-05-01T12:00:00+00:00"
        title, entries = parse_feed(site.atom())
        assert title == "Articles" and entries[0].link == "/articles/2.html" and not entries[0].content
        assert entries[0].author == "writer2" and entries[0].summary == "Summary of article 2 only."
    with pytest.raises(FeedError):
        parse_feed(b"<html><body>not a feed</body></html>")
    with pytest.raises(FeedError):
        parse_feed(b"<rss><channel><item>")


def test_hostile_xml_is_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    site = FeedSite(secret_path=str(secret))
    _, items = parse_feed(site.hostile())
    assert len(items) == 1
    fields = " ".join(str(v) for v in vars(items[0]).values())
    assert SECRET not in fields and "expanded" not in fields
    assert items[0].title == "Hostile  item"
    with pytest.raises(FeedError):  # libxml2 refuses the amplification; nothing is expanded
        parse_feed(site.entity_bomb())


def test_rss_and_atom_crawls_then_nothing_new_then_one_new_entry() -> None:
    settings = load_settings()
    db = open_database(settings)
    with FeedSite() as site:
        assert isinstance(site, FeedSite)
        add_source(db, "news", "rss", f"{site.base_url}/rss.xml")
        add_source(db, "arts", "rss", f"{site.base_url}/atom.xml")
        rss = run_crawl(settings, "news")
        assert rss["status"] == "ok" and rss["errors"] == 0 and rss["new"] == 4, rss
        assert not [r for r in site.requests if r.startswith("/news/")]  # full content: no page fetched
        atom = run_crawl(settings, "arts")
        assert atom["status"] == "ok" and atom["errors"] == 0 and atom["new"] == 3, atom
        assert sorted(r for r in site.requests if r.startswith("/articles/")) == sorted(site.articles)
        with db.session() as sess:
            stored = {p.url: p for p in sess.scalars(select(Posting))}
        for it in site.rss_items:
            posting = stored[f"{site.base_url}{it['path']}"]
            assert posting.title == it["title"] and posting.author == it["author"]
            assert posting.published == datetime.fromisoformat(it["iso"])
            assert posting.published is not None and posting.published.tzinfo is not None
            n = it["guid"][-1]
            assert posting.text == f"Digest {n}: dump of shop{n}.example\nalice{n}@shop{n}.example"
        for entry in site.atom_entries:
            posting = stored[f"{site.base_url}{entry['path']}"]
            assert posting.title == entry["title"] and posting.author == entry["author"]
            assert posting.published == datetime.fromisoformat(entry["iso"])
            assert posting.text == entry["text"]  # the page's body text: no title, style or script

        # Unchanged feeds: conditional GETs answered 304; nothing fetched, nothing stored.
        site.requests.clear()
        for name in ("news", "arts"):
            again = run_crawl(settings, name)
            assert again["status"] == "ok" and again["new"] == 0 and again["errors"] == 0, again
            assert again["status_counts"].get("304") == 1
        assert [r for r in site.requests if r != "/robots.txt"] == ["/rss.xml", "/atom.xml"]
        sent = dict(site.headers[-1][1])
        assert sent.get("if-none-match") and sent.get("if-modified-since")

        # One new entry: only its page is fetched.
        entry = site.add_entry("Breaking: new dump")
        site.requests.clear()
        third = run_crawl(settings, "arts")
        assert third["status"] == "ok" and third["new"] == 1, third
        assert [r for r in site.requests if r.startswith("/articles/")] == [entry["path"]]
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "arts"))
        assert source is not None and source.cursor["newest"] == entry["iso"]
        assert source.cursor["guids"] == [entry["id"]] and source.cursor["etag"]


def test_hostile_and_malformed_feeds_are_errors_not_crashes(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    settings = load_settings()
    db = open_database(settings)
    with FeedSite(secret_path=str(secret)) as site:
        add_source(db, "hostile", "rss", f"{site.base_url}/hostile.xml")
        add_source(db, "broken", "rss", f"{site.base_url}/broken.xml")
        hostile = run_crawl(settings, "hostile")
        assert hostile["status"] == "ok" and hostile["new"] == 1, hostile
        with db.session() as sess:
            rows = list(sess.scalars(select(Posting)))
        assert len(rows) == 1 and SECRET not in rows[0].text and SECRET not in (rows[0].title or "")
        assert rows[0].text == "Before after end"
        broken = run_crawl(settings, "broken")
        assert broken["errors"] == 1 and broken["new"] == 0, broken
        assert broken["error"] and "\n" not in broken["error"], broken  # the first error, in one line
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "broken"))
        assert source is not None and not source.cursor.get("newest")


def test_the_source_proxy_carries_every_request() -> None:
    settings = load_settings()
    db = open_database(settings)
    with FeedSite() as site:  # it answers absolute-URI requests as an HTTP proxy would
        add_source(db, "onion", "rss", "http://feeds.invalid/atom.xml", proxy=site.base_url)
        summary = run_crawl(settings, "onion")
        assert summary["status"] == "ok" and summary["new"] == 3, summary
        assert "http://feeds.invalid/atom.xml" in site.requests
        assert {r for r in site.requests if "/articles/" in r} == {
            f"http://feeds.invalid{p}" for p in site.articles
        }


# -- encodings: BOM, then the HTTP charset, then the XML declaration, then detection ----------------------

ITEM = (
    "<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>"
    "<pubDate>Wed, 01 May 2024 12:00:00 GMT</pubDate>{content}</item>"
)
ENCODED = "<content:encoded><![CDATA[<p>{text}</p>]]></content:encoded>"


def _rss(declaration: str, items: list[str]) -> str:
    return (
        f'{declaration}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Encodings</title>{''.join(items)}</channel></rss>"
    )


class EncodedFeeds(FixtureServer):
    """Feeds as real servers send them: Latin-1 without a declaration (charset only in the header),
    windows-1252 that declares UTF-8, UTF-16 with a BOM under a header that says UTF-8, and a linked page
    served as ``application/octet-stream`` whose only charset is its ``<meta>``."""

    LATIN1 = "Café Müller: naïve señor, Ångström, ½ price"
    CP1252 = "“Smart” quotes cost 5 € – Zoë’s dump"
    UTF16 = "Łódź – Ελληνικά – 東京 – jane@acme.example"
    PAGE = "Page of Straße Nr. 5 – ‘quoted’ Œuvre"

    def __init__(self) -> None:
        super().__init__()
        latin = ITEM.format(
            title="Crème brûlée", link="/l/1", guid="l1", content=ENCODED.format(text=self.LATIN1)
        )
        page_item = ITEM.format(title="Seite", link="/page.html", guid="l2", content="")
        smart = ITEM.format(
            title="Preis 5 €", link="/w/1", guid="w1", content=ENCODED.format(text=self.CP1252)
        )
        wide = ITEM.format(title="Łódź", link="/u/1", guid="u1", content=ENCODED.format(text=self.UTF16))
        page = (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            f"<title>t</title></head><body><p>{self.PAGE}</p></body></html>"
        )
        self.routes = {
            "/latin1.xml": Reply(
                200, _rss("", [latin, page_item]).encode("latin-1"), "application/rss+xml; charset=ISO-8859-1"
            ),
            "/page.html": Reply(200, page.encode("cp1252"), "application/octet-stream"),
            "/cp1252.xml": Reply(
                200,
                _rss('<?xml version="1.0" encoding="utf-8"?>', [smart]).encode("cp1252"),
                "application/xml",
            ),
            "/utf16.xml": Reply(
                200,
                _rss('<?xml version="1.0" encoding="UTF-16"?>', [wide]).encode("utf-16"),
                "text/xml; charset=utf-8",
            ),
        }

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        return self.routes[path]


def test_parse_feed_decodes_by_bom_then_header_then_declaration() -> None:
    site = EncodedFeeds()
    latin = site.routes["/latin1.xml"].body
    _, items = parse_feed(latin, "ISO-8859-1")
    assert items[0].content == f"<p>{site.LATIN1}</p>" and items[0].title == "Crème brûlée"
    _, items = parse_feed(latin)  # no header either: detected, not dropped
    assert items[0].content == f"<p>{site.LATIN1}</p>"
    _, items = parse_feed(site.routes["/cp1252.xml"].body)  # declares UTF-8: re-decoded as windows-1252
    assert items[0].content == f"<p>{site.CP1252}</p>" and items[0].title == "Preis 5 €"
    _, items = parse_feed(site.routes["/utf16.xml"].body, "utf-8")  # the BOM wins over the header
    assert items[0].content == f"<p>{site.UTF16}</p>" and items[0].title == "Łódź"
    # The header wins over the declaration: a KOI8-R feed that says UTF-8.
    koi = _rss(
        '<?xml version="1.0" encoding="utf-8"?>',
        [ITEM.format(title="Привет", link="/k", guid="k", content="")],
    )
    _, items = parse_feed(koi.encode("koi8-r"), b"koi8-r")
    assert items[0].title == "Привет"


def test_feeds_in_legacy_and_wide_encodings_are_stored_with_the_right_text() -> None:
    settings = load_settings()
    db = open_database(settings)
    with EncodedFeeds() as site:
        for name in ("latin1", "cp1252", "utf16"):
            add_source(db, name, "rss", f"{site.base_url}/{name}.xml")
        runs = {name: run_crawl(settings, name) for name in ("latin1", "cp1252", "utf16")}
        for name, summary in runs.items():
            assert summary["status"] == "ok" and summary["errors"] == 0, (name, summary)
        assert (runs["latin1"]["new"], runs["cp1252"]["new"], runs["utf16"]["new"]) == (2, 1, 1), runs
        with db.session() as sess:
            stored = {p.url.removeprefix(site.base_url): p for p in sess.scalars(select(Posting))}
    assert stored["/l/1"].text == site.LATIN1 and stored["/l/1"].title == "Crème brûlée"
    assert stored["/page.html"].text == site.PAGE and stored["/page.html"].title == "Seite"
    assert stored["/w/1"].text == site.CP1252 and stored["/w/1"].title == "Preis 5 €"
    assert stored["/u/1"].text == site.UTF16 and stored["/u/1"].title == "Łódź"
