"""The gists spider against a loopback GitHub API: Link pagination, raw files, skipped large files,
the cursor, and the listing's ETag (a 304 is "nothing new")."""

from __future__ import annotations

from datetime import datetime

from api_fixtures import GistsApi
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.gists import parse_link_next
from leaksentinel.actions.sources import add_source


def test_link_header_next() -> None:
    header = '<https://api.github.com/gists/public?page=2>; rel="next", <https://x/?page=9>; rel="last"'
    assert parse_link_next([header.encode()]) == "https://api.github.com/gists/public?page=2"
    assert parse_link_next(['<https://x/?page=1>; rel="prev", <https://x/?page=1>; rel="first"']) is None
    assert parse_link_next([]) is None


def _raw_fetches(api: GistsApi) -> list[str]:
    return [r for r in api.requests if "/raw/" in r]


def test_crawl_stores_every_file_then_fetches_only_new_gists() -> None:
    settings = load_settings()
    db = open_database(settings)
    with GistsApi() as api:
        assert isinstance(api, GistsApi)
        add_source(db, "gh", "gists", api.base_url)
        expected = api.expected_files()
        first = run_crawl(settings, "gh")
        assert first["status"] == "ok" and first["errors"] == 0, first
        assert first["new"] == len(expected) == first["postings"]
        assert [r.split("?")[0] for r in api.requests].count("/gists/public") == 2  # page 1 and page 2
        assert api.huge_path not in api.requests and api.truncated_path not in api.requests
        with db.session() as sess:
            stored = {p.url: p for p in sess.scalars(select(Posting))}
        assert set(stored) == {row["url"] for row in expected}
        for row in expected:
            posting = stored[row["url"]]
            assert posting.title == row["title"] and posting.author == row["author"]
            assert posting.text == row["text"].replace("\r\n", "\n")
            assert posting.published is not None and posting.published.tzinfo is not None
            assert posting.published == datetime.fromisoformat(row["published"].replace("Z", "+00:00"))
        assert any(row["title"].startswith("notes") for row in expected)  # no description: the filename

        # Unchanged listing: a conditional GET answered 304, no raw file fetched, nothing stored.
        api.requests.clear()
        second = run_crawl(settings, "gh")
        assert second["status"] == "ok" and second["new"] == 0 and second["errors"] == 0, second
        assert api.requests == ["/robots.txt", "/gists/public"] or api.requests == ["/gists/public"]
        listing_headers = [h for path, h in api.headers if path == "/gists/public"]
        assert listing_headers[-1].get("if-none-match", "").startswith('W/"')

        # A new gist: the listing changes, only the new gist's files are fetched.
        gist = api.add_gist("newbie", {"leak.txt": "carol@acme.example\n", "more.txt": "x\n"}, "fresh")
        api.requests.clear()
        third = run_crawl(settings, "gh")
        assert third["status"] == "ok" and third["new"] == 2, third
        new_paths = sorted(f["raw_url"] for f in gist["files"].values())
        assert sorted(_raw_fetches(api)) == new_paths
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "gh"))
            assert source is not None
            assert source.cursor["updated_at"] == gist["updated_at"] and source.cursor["ids"] == [gist["id"]]
            assert source.cursor["etag"] and source.cursor["retry"] == []


def test_a_file_that_failed_is_fetched_next_run() -> None:
    settings = load_settings()
    db = open_database(settings)
    with GistsApi() as api:
        assert isinstance(api, GistsApi)
        add_source(db, "gh", "gists", api.base_url)
        expected = api.expected_files()
        broken = expected[0]["url"].removeprefix(api.base_url)
        api.fail[broken] = 403
        first = run_crawl(settings, "gh")
        assert first["status"] == "ok" and first["new"] == len(expected) - 1 and first["errors"] == 1, first
        del api.fail[broken]
        api.requests.clear()
        second = run_crawl(settings, "gh")
        assert second["new"] == 1 and second["errors"] == 0, second
        assert _raw_fetches(api) == [broken]
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "gh"))
        assert source is not None and source.cursor["retry"] == []
