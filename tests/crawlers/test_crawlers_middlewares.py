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


def test_netguard_middleware_refuses_schemes_literals_and_proxies_before_any_connection() -> None:
    import pytest
    from scrapy.exceptions import IgnoreRequest
    from scrapy.utils.test import get_crawler

    from crawlers.middlewares.netguard import NetGuardMiddleware, literal_address

    crawler = get_crawler(
        settings_dict={
            "LEAKSENTINEL_ALLOW_PRIVATE_TARGETS": False,
            "LEAKSENTINEL_CRAWL_ALLOW_NETWORKS": ["127.0.0.1/32"],
        }
    )
    mw = NetGuardMiddleware.from_crawler(crawler)
    spider = Spider(name="x")
    assert literal_address("2130706433") == "127.0.0.1" and literal_address("0x7f.1") == "127.0.0.1"
    assert literal_address("[::1]") == "::1" and literal_address("paste.example") is None
    refused = {
        "ftp://127.0.0.1/x": "blocked: ftp scheme is not crawled",
        "http://10.0.0.1/": "blocked: 10.0.0.1 is a private address",
        "http://0xa9fea9fe/latest/": "blocked: 169.254.169.254 is a link-local address",
        "http://[::ffff:127.0.0.2]/": "blocked: ::ffff:7f00:2 is a loopback address",
    }
    for url, reason in refused.items():
        with pytest.raises(IgnoreRequest) as caught:
            mw.process_request(Request(url), spider)
        assert str(caught.value).startswith(reason), (url, str(caught.value))
    assert mw.process_request(Request("http://127.0.0.1:8000/ok"), spider) is None
    proxied = Request("http://paste.example/", meta={"proxy": "http://10.9.9.9:3128"})
    with pytest.raises(IgnoreRequest, match=r"blocked: proxy 10.9.9.9: 10.9.9.9 is a private address"):
        mw.process_request(proxied, spider)
    # Through an allowed proxy a name is the proxy's to resolve; a literal target is still checked.
    assert (
        mw.process_request(Request("http://paste.example/", meta={"proxy": "http://127.0.0.1:3128"}), spider)
        is None
    )
    with pytest.raises(IgnoreRequest):
        mw.process_request(Request("http://10.0.0.1/", meta={"proxy": "http://127.0.0.1:3128"}), spider)


def test_no_component_of_ours_asks_scrapy_for_the_deprecated_spider_argument() -> None:
    """Scrapy 2.14 deprecated passing ``spider`` to components and will stop passing it: a method that
    requires it warns on every crawl and breaks on that upgrade. Every middleware, pipeline and extension
    of a crawl is built as a crawl builds it, and none may be one Scrapy has to hand a spider to."""
    import warnings

    from scrapy.core.downloader.middleware import DownloaderMiddlewareManager
    from scrapy.exceptions import ScrapyDeprecationWarning
    from scrapy.utils.test import get_crawler

    from crawlers import settings as crawl_settings

    crawler = get_crawler(
        settings_dict={
            "DOWNLOADER_MIDDLEWARES": crawl_settings.DOWNLOADER_MIDDLEWARES,
            "ITEM_PIPELINES": {},
        }
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        downloader = DownloaderMiddlewareManager.from_crawler(crawler)
    ours = [w for w in caught if issubclass(w.category, ScrapyDeprecationWarning)]
    assert not ours, [str(w.message) for w in ours]
    assert not downloader._mw_methods_requiring_spider
    names = {type(mw).__module__ for mw in downloader.middlewares}
    assert {"crawlers.middlewares.netguard", "crawlers.middlewares.retry_after"} <= names
    # the item pipelines and extensions take ``spider`` only as an optional argument (Scrapy checks them
    # the same way: a ``spider`` parameter without a default); building them needs a home, so only their
    # signatures are read here
    import inspect

    from scrapy.utils.misc import load_object

    for path in [*crawl_settings.ITEM_PIPELINES, *crawl_settings.EXTENSIONS]:
        cls = load_object(path)
        for name in ("process_item", "open_spider", "close_spider"):
            method = getattr(cls, name, None)
            if method is None:
                continue
            spider = inspect.signature(method).parameters.get("spider")
            assert spider is None or spider.default is not inspect.Parameter.empty, f"{path}.{name}"


def test_source_options_read_the_crawlers_spider_when_scrapy_passes_none() -> None:
    from scrapy.utils.test import get_crawler

    crawler = get_crawler()
    crawler.spider = Spider(name="x")
    crawler.spider.options = {"proxy": "http://127.0.0.1:8118", "render": True}  # type: ignore[attr-defined]
    mw = SourceOptionsMiddleware.from_crawler(crawler)
    req = Request("http://example.onion/forum")
    mw.process_request(req)
    assert req.meta["proxy"] == "http://127.0.0.1:8118" and req.meta["playwright"] is True


def test_retry_after_counts_its_wait_on_the_crawler_when_scrapy_passes_no_spider() -> None:
    import asyncio

    from scrapy.http import Response
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from crawlers.middlewares.retry_after import RetryAfterMiddleware

    crawler = get_crawler()
    crawler.stats = MemoryStatsCollector(crawler)
    mw = RetryAfterMiddleware.from_crawler(crawler)
    request = Request("http://127.0.0.1/x")
    busy = Response("http://127.0.0.1/x", status=429, headers={"Retry-After": "0"})
    retry = asyncio.run(mw.process_response(request, busy))
    assert isinstance(retry, Request) and retry.meta["retry_after_times"] == 1
    assert crawler.stats.get_value("leaksentinel/retry_after_waits") == 1
