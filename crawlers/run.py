"""One crawl run in this process: ``python -m crawlers.run --source ID``.

Why a process of its own: Twisted's reactor cannot be restarted, so every run gets a fresh process
(the parent, crawlers.job, enforces the timeout and records the job). The last stdout line is the
run's JSON summary; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings
from scrapy.spiderloader import SpiderLoader

from core.db import open_database
from core.models import Source
from core.settings import CHROMIUM_ARGS, Settings, load_settings

__all__ = ["main", "scrapy_settings_for"]


def scrapy_settings_for(settings: Settings, source: Source) -> ScrapySettings:
    s = ScrapySettings()
    s.setmodule("crawlers.settings", priority="project")
    s.set("USER_AGENT", settings.crawl_user_agent, priority="project")
    s.set("DOWNLOAD_MAXSIZE", settings.crawl_max_response_bytes, priority="project")
    opts = source.options or {}
    if source.render:
        apply_render_settings(s, settings)
    # APIs used as their owners intend (Pastebin's IP-whitelisted scraping API, GitHub's REST API) are not
    # crawled pages: their robots.txt (GitHub's disallows everything) is not consulted unless asked.
    api_kind = source.kind in {"pastebin", "gists"}
    if opts.get("robots") is False or (api_kind and opts.get("robots") is not True):
        s.set("ROBOTSTXT_OBEY", False, priority="cmdline")
    for key, setting in (
        ("delay", "DOWNLOAD_DELAY"),
        ("concurrency", "CONCURRENT_REQUESTS_PER_DOMAIN"),
        ("page_budget", "CLOSESPIDER_PAGECOUNT"),
        ("byte_budget", "LEAKSENTINEL_BYTE_BUDGET"),
    ):
        if opts.get(key) is not None:
            s.set(setting, opts[key], priority="cmdline")
    return s


def _block_heavy(request: Any) -> bool:
    """Images, fonts and media are never needed to read a posting."""
    return bool(request.resource_type in {"image", "font", "media"})


def apply_render_settings(s: ScrapySettings, settings: Settings) -> None:
    """Fetch through scrapy-playwright driving the system Chromium (never a downloaded browser)."""
    handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
    s.set("DOWNLOAD_HANDLERS", {"http": handler, "https": handler}, priority="cmdline")
    s.set("PLAYWRIGHT_BROWSER_TYPE", "chromium", priority="cmdline")
    s.set(
        "PLAYWRIGHT_LAUNCH_OPTIONS",
        {
            "executable_path": settings.chromium_path,
            "headless": True,
            "args": list(CHROMIUM_ARGS),
        },
        priority="cmdline",
    )
    s.set("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", 4, priority="cmdline")
    s.set("PLAYWRIGHT_MAX_CONTEXTS", 2, priority="cmdline")
    s.set("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", 30_000, priority="cmdline")
    s.set("PLAYWRIGHT_ABORT_REQUEST", _block_heavy, priority="cmdline")


def summarize(stats: dict[str, Any], seconds: float, source: str) -> dict[str, Any]:
    errors = int(stats.get("log_count/ERROR", 0)) + int(stats.get("leaksentinel/errors", 0))
    return {
        "source": source,
        "fetched": int(stats.get("downloader/response_count", 0)),
        "postings": int(stats.get("leaksentinel/postings", 0)),
        "new": int(stats.get("leaksentinel/new", 0)),
        "matches": int(stats.get("leaksentinel/matches", 0)),
        "alerts": int(stats.get("leaksentinel/alerts", 0)),
        "errors": errors,
        "seconds": round(seconds, 3),
        "bytes": int(stats.get("downloader/response_bytes", 0)),
        "status_counts": {
            k.rsplit("/", 1)[1]: int(v)
            for k, v in stats.items()
            if k.startswith("downloader/response_status_count/")
        },
        "finish_reason": str(stats.get("finish_reason", "")),
        # Postings whose detection hit its time limit (their end was not read): worth a look.
        "partial_scans": int(stats.get("leaksentinel/partial_scans", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crawlers.run")
    parser.add_argument("--source", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    db = open_database(settings)
    with db.session() as sess:
        source = sess.get(Source, args.source)
        if source is None:
            print(f"unknown source id {args.source}", file=sys.stderr)
            return 2
        sess.expunge(source)
    scrapy_settings = scrapy_settings_for(settings, source)
    spider_cls = SpiderLoader.from_settings(scrapy_settings).load(source.kind)
    process = CrawlerProcess(scrapy_settings, install_root_handler=True)
    crawler = process.create_crawler(spider_cls)
    started = time.monotonic()
    process.crawl(
        crawler,
        source_name=source.name,
        source_url=source.url,
        cursor=source.cursor or {},
        options={**(source.options or {}), "proxy": source.proxy, "render": source.render},
    )
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    summary = summarize(stats, time.monotonic() - started, source.name)
    spider = crawler.spider
    summary["cursor"] = getattr(spider, "new_cursor", None)
    sys.stdout.write(json.dumps(summary, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
