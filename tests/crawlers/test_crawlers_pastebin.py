"""The pastebin spider against the simulated scraping API: every answer that is not a paste (empty,
not ready, not found, removed, an HTML error page, not whitelisted, rate-limited by status or by text),
not-ready pastes fetched again, the cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.pastebin import classify, is_sentinel
from leaksentinel.actions.sources import add_source
from leaksentinel.sim import Underground
from leaksentinel.sim.pastebin import (
    HTML_ERROR_PAGE,
    ITEM_NOT_FOUND,
    ITEM_NOT_READY,
    ITEM_REMOVED,
    NOT_WHITELISTED,
    NOT_WHITELISTED_OLD,
    SLOW_DOWN,
)
from leaksentinel.sim.postings import SimPaste


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (ITEM_NOT_FOUND, "not_found"),
        (ITEM_NOT_READY, "not_ready"),
        (NOT_WHITELISTED.format(ip="1.2.3.4"), "no_access"),
        (NOT_WHITELISTED_OLD.format(ip="2001:db8::1"), "no_access"),
        ("Forbidden: " + NOT_WHITELISTED.format(ip="10.1.5.6"), "no_access"),
        (ITEM_REMOVED, "removed"),
        ("Error, paste key is not valid.", "not_found"),
        (SLOW_DOWN, "rate_limited"),
        ("Too Many Requests", "rate_limited"),
        ("", "empty"),
        (" \r\n\t", "empty"),
    ],
)
def test_sentinels_are_recognised(body: str, kind: str) -> None:
    assert is_sentinel(body.encode()) == kind


def test_a_real_paste_is_not_a_sentinel() -> None:
    assert is_sentinel(b"Error handling in Python\nuse try/except") is None
    assert is_sentinel(b"x" * 1000) is None
    assert is_sentinel(b"try again in 5 minutes, the build is flaky") is None
    # A paste quoting a sentinel among other lines is still a paste.
    assert is_sentinel(b"log:\nfoo\nThis paste has been removed!\nbar\nbaz") is None
    # HTML is an error page only when served as HTML: a paste of HTML source comes as text/plain.
    page = HTML_ERROR_PAGE.encode()
    assert classify(page, b"text/html; charset=utf-8") == "html_error"
    assert classify(page, "text/plain; charset=utf-8") is None


def _stored_keys(settings: object) -> set[str]:
    db = open_database(settings)  # type: ignore[arg-type]
    with db.session() as sess:
        return {p.url.rsplit("/", 1)[1] for p in sess.scalars(select(Posting))}


def test_answers_that_are_not_pastes_are_never_stored_and_transient_ones_are_fetched_again() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=7, n_noise=6) as site:
        pastes = site.pastes
        html_source = SimPaste("htmlsrc1", "page", "", "html5", pastes[-1].date + 1, HTML_ERROR_PAGE)
        site.site.add(html_source)
        kinds = ["empty", "not_found", "removed", "html_error"]
        forced = {pastes[i].key: kind for i, kind in enumerate(kinds)}
        site.site.answers.update(forced)
        site.site.not_ready.add(pastes[4].key)
        add_source(db, "pb", "pastebin", site.base_url)
        first = run_crawl(settings, "pb")
        assert first["status"] == "ok" and first["errors"] == 0, first
        stored = _stored_keys(settings)
        expected = {p.key for p in pastes[5:]} | {html_source.key}
        assert stored == expected, (stored, forced)
        assert first["new"] == len(expected)
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "pb"))
            assert source is not None
            pending = set(source.cursor["pending"])
        # Transient answers wait for the next run; gone pastes are forgotten.
        assert pending == {pastes[0].key, pastes[3].key, pastes[4].key}

        site.site.answers.clear()
        site.site.not_ready.clear()
        site.site.requests.clear()
        second = run_crawl(settings, "pb")
        assert second["status"] == "ok" and second["new"] == 3, second
        fetched = {r.rsplit("=", 1)[1] for r in site.site.requests if "api_scrape_item.php" in r}
        assert fetched == pending
        assert _stored_keys(settings) == expected | pending


def test_rate_limited_runs_wait_retry_and_succeed() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=8, n_noise=2) as site:
        site.site.slow_down_next(1, "/api_scraping.php")  # the listing says "slow down" (HTTP 200)
        site.site.slow_down_next(1, "/api_scrape_item.php")  # and so does one paste
        site.site.fail_next(1, 429, "/api_scrape_item.php")  # and one answers 429 with Retry-After
        add_source(db, "pb", "pastebin", site.base_url)
        summary = run_crawl(settings, "pb")
        assert summary["status"] == "ok" and summary["errors"] == 0, summary
        assert summary["status_counts"].get("429") == 1
        assert summary["new"] == len(site.pastes)
        assert _stored_keys(settings) == {p.key for p in site.pastes}
        listings = [r for r in site.site.requests if r.startswith("/api_scraping.php")]
        assert len(listings) == 2  # asked again after the wait, not given up


def test_a_deployment_that_is_not_whitelisted_stores_nothing_and_says_why() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=9, n_noise=2) as site:
        site.site.whitelisted = False
        add_source(db, "pb", "pastebin", site.base_url)
        summary = run_crawl(settings, "pb")
        assert summary["postings"] == 0 and summary["errors"] == 1, summary
        assert "not whitelisted" in summary["error"], summary
        assert summary["status"] == "failed" and summary["refused"] == 1, summary  # refused, nothing read
        # Whitelisted only for the listing: a paste refused with the older wording is kept pending.
        site.site.whitelisted = True
        refused = site.pastes[0]
        site.site.answers[refused.key] = "not_whitelisted_old"
        again = run_crawl(settings, "pb")
        assert again["errors"] == 1 and "not whitelisted" in again["error"], again
        assert again["status"] == "ok", again  # the other pastes were read
        assert refused.key not in _stored_keys(settings)
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "pb"))
            assert source is not None and source.cursor["pending"] == [refused.key]


def test_crawl_stores_every_paste_with_metadata_and_refetches_not_ready_later() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=3, n_noise=4) as site:
        pastes = site.pastes
        late = pastes[1]
        site.site.not_ready.add(late.key)
        add_source(db, "pb", "pastebin", site.base_url)
        first = run_crawl(settings, "pb")
        assert first["status"] == "ok"
        assert first["postings"] == len(pastes) - 1 and first["new"] == len(pastes) - 1
        with db.session() as sess:
            stored = {p.url.rsplit("/", 1)[1]: p for p in sess.scalars(select(Posting))}
        assert late.key not in stored
        sample = pastes[0]
        row = stored[sample.key]
        assert row.title == sample.title and row.author == (sample.user or None)
        assert row.text.strip() == sample.text.strip()
        assert row.published is not None and int(row.published.timestamp()) == sample.date
        assert (
            row.evidence_sha256
            and (settings.evidence_dir / row.evidence_sha256[:2] / row.evidence_sha256).is_file()
        )

        # The paste becomes ready: the next run fetches it and nothing else.
        site.site.not_ready.discard(late.key)
        site.site.requests.clear()
        second = run_crawl(settings, "pb")
        assert second["new"] == 1
        items = [r for r in site.site.requests if "api_scrape_item.php" in r]
        assert items == [f"/api_scrape_item.php?i={late.key}"]
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "pb"))
            assert source is not None and source.last_status == "ok" and source.cursor["pending"] == []


def test_unreachable_source_is_a_failed_run() -> None:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "dead", "pastebin", "http://127.0.0.1:9")
    summary = run_crawl(settings, "dead", timeout_s=60)
    assert summary["status"] == "failed" and summary["fetched"] == 0 and summary["errors"] > 0


def test_pastes_still_rate_limited_after_the_waits_are_fetched_next_run() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=10, n_noise=1) as site:
        keys = {p.key for p in site.pastes}
        # Every paste answers "slow down" to each of its four asks (once, then after 1, 2 and 4 s).
        site.site.slow_down_next(4 * len(keys), "/api_scrape_item.php")
        add_source(db, "pb", "pastebin", site.base_url)
        first = run_crawl(settings, "pb")
        assert first["status"] == "ok" and first["errors"] == 0 and first["postings"] == 0, first
        asked = [r for r in site.site.requests if r.startswith("/api_scrape_item.php")]
        assert len(asked) == 4 * len(keys)  # then left pending, not stored and not a failure
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "pb"))
            assert source is not None and set(source.cursor["pending"]) == keys
        second = run_crawl(settings, "pb")
        assert second["status"] == "ok" and second["new"] == len(keys), second
        assert _stored_keys(settings) == keys


def test_pastes_are_fetched_oldest_first() -> None:
    """A repost must find the paste it copies already stored: the spider asks for the pastes in the order
    they were posted (at most a few apart, as many as are fetched at once), not newest first."""
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=11, n_noise=30) as site:
        oldest_first = [p.key for p in site.pastes]
        add_source(db, "pb", "pastebin", site.base_url)
        run = run_crawl(settings, "pb")
        assert run["status"] == "ok" and run["new"] == len(oldest_first), run
        asked = [r.rsplit("=", 1)[1] for r in site.site.requests if "api_scrape_item.php" in r]
    assert sorted(asked) == sorted(oldest_first)
    # Requests run four at once, so neighbours may swap; newest first would put the last paste first.
    assert all(abs(asked.index(key) - rank) < 4 for rank, key in enumerate(oldest_first)), asked


def test_a_paste_asked_for_again_goes_ahead_of_the_younger_ones() -> None:
    """A paste that failed once (HTTP 503, retried by Scrapy) is fetched again before the pastes still
    waiting, all younger than it, not after the last of them: its reposts must find it stored."""
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=12, n_noise=40) as site:
        oldest_first = [p.key for p in site.pastes]
        early = oldest_first[1]
        site.site.fail_next(1, 503, path=f"/api_scrape_item.php?i={early}")
        add_source(db, "pb", "pastebin", site.base_url)
        run = run_crawl(settings, "pb")
        assert run["status"] == "ok" and run["new"] == len(oldest_first), run
        asked = [r.rsplit("=", 1)[1] for r in site.site.requests if "api_scrape_item.php" in r]
    again = [i for i, key in enumerate(asked) if key == early]
    assert len(again) == 2, asked
    # Requests run four at once: the retry comes within a few fetches of the failure, not at the end.
    assert again[1] - again[0] <= 8 < len(asked) - again[1], (again, len(asked))
