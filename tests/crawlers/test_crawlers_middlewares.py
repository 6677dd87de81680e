"""Crawl middlewares: Retry-After honoured (a recovered 429 is a successful run), per-source options."""

from __future__ import annotations

from datetime import UTC, datetime

from scrapy import Request, Spider

from core.db import open_database
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.middlewares.retry_after import retry_after_seconds
from crawlers.middlewares.source_options import SourceOptionsMiddleware
from leaksentinel.actions.sources import add_source
from leaksentinel.sim import Underground


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(b"Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_429_with_retry_after_is_waited_out_and_the_run_succeeds() -> None:
    settings = load_settings()
    with Underground(seed=5, n_noise=2) as site:
        site.site.fail_next(1, status=429)
        add_source(open_database(settings), "pb", "pastebin", site.base_url)
        summary = run_crawl(settings, "pb")
        assert summary["status"] == "ok", summary
        assert summary["status_counts"].get("429") == 1
        assert summary["new"] == len(site.pastes)


def test_source_options_set_proxy_and_render_on_every_request() -> None:
    spider = Spider(name="x")
    spider.options = {"proxy": "http://127.0.0.1:8118", "render": True}  # type: ignore[attr-defined]
    mw = SourceOptionsMiddleware()
    req = Request("http://example.onion/forum")
    mw.process_request(req, spider)
    assert req.meta["proxy"] == "http://127.0.0.1:8118" and req.meta["playwright"] is True
    robots = Request("http://example.onion/robots.txt")
    mw.process_request(robots, spider)
    assert "playwright" not in robots.meta


def test_a_byte_budget_stops_the_run_and_keeps_the_cursor() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=5, n_noise=8) as site:
        add_source(db, "small", "pastebin", site.base_url, options={"byte_budget": 3000})
        summary = run_crawl(settings, "small")
        assert summary["finish_reason"] == "byte_budget"
        assert summary["postings"] < len(site.pastes)
        with db.session() as sess:
            from sqlalchemy import select

            from core.models import Source

            assert sess.scalar(select(Source.cursor).where(Source.name == "small")) == {}
