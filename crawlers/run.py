"""One crawl run in this process: ``python -m crawlers.run --source ID``.

Why a process of its own: Twisted's reactor cannot be restarted, so every run gets a fresh process
(the parent, crawlers.job, enforces the timeout and records the job). The last stdout line is the
run's JSON summary; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings
from scrapy.spiderloader import SpiderLoader

from core.db import open_database
from core.models import Source
from core.netguard import TargetPolicy
from core.settings import CHROMIUM_ARGS, Settings, load_settings
from crawlers.browserguard import BrowserGuard, record_refusal
from crawlers.browserguard import totals as browser_totals
from crawlers.browserproxy import process_proxy, stop_process_proxy

__all__ = ["PARENT_ENV", "FirstError", "chromium_problem", "main", "scrapy_settings_for"]

#: The pid of the process that started this run (crawlers.job sets it).
PARENT_ENV = "LEAKSENTINEL_CRAWL_PARENT_PID"


def scrapy_settings_for(settings: Settings, source: Source) -> ScrapySettings:
    s = ScrapySettings()
    s.setmodule("crawlers.settings", priority="project")
    s.set("USER_AGENT", settings.crawl_user_agent, priority="project")
    s.set("DOWNLOAD_MAXSIZE", settings.crawl_max_response_bytes, priority="project")
    # The operator's decision on private targets (and the networks allowed or blocked all the same)
    # reaches the resolver, the middlewares and the browser guard of this run.
    policy = TargetPolicy.from_settings(settings)
    s.set("LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", policy.allow_private, priority="cmdline")
    s.set("LEAKSENTINEL_CRAWL_ALLOW_NETWORKS", [str(n) for n in policy.allow_networks], priority="cmdline")
    s.set("LEAKSENTINEL_CRAWL_BLOCK_NETWORKS", [str(n) for n in policy.block_networks], priority="cmdline")
    opts = source.options or {}
    if source.render:
        apply_render_settings(s, settings, policy, upstream=source.proxy)
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


def chromium_problem(settings: Settings) -> str | None:
    """Why the configured Chromium cannot be started, in one line, or None."""
    path = settings.chromium_path
    if not path or not os.path.isfile(path):
        return f"Chromium not found at {path or '(chromium_path is empty)'}"
    if not os.access(path, os.X_OK):
        return f"Chromium at {path} is not executable"
    return None


def apply_render_settings(
    s: ScrapySettings,
    settings: Settings,
    policy: TargetPolicy | None = None,
    upstream: str | None = None,
) -> None:
    """Fetch through scrapy-playwright driving the system Chromium (never a downloaded browser).

    Every request the browser makes goes through ``BrowserGuard`` (crawlers/browserguard.py) and every
    connection it opens through this process's guarded proxy (crawlers/browserproxy.py, started here,
    chained through the source's own ``upstream`` proxy if it has one; ``stop_process_proxy`` ends it).
    """
    policy = policy or TargetPolicy.from_settings(settings)
    proxy_url = process_proxy(policy, upstream, on_refusal=record_refusal)
    handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
    s.set("DOWNLOAD_HANDLERS", {"http": handler, "https": handler}, priority="cmdline")
    s.set("PLAYWRIGHT_BROWSER_TYPE", "chromium", priority="cmdline")
    s.set(
        "PLAYWRIGHT_LAUNCH_OPTIONS",
        {
            "executable_path": settings.chromium_path,
            "headless": True,
            "args": list(CHROMIUM_ARGS),
            # "<-loopback>": loopback targets go through the proxy too (Chromium bypasses them by
            # default); Playwright then writes exactly --proxy-bypass-list=<-loopback>. Contexts get no
            # proxy of their own (PLAYWRIGHT_CONTEXTS below), so this one applies to every page.
            "proxy": {"server": proxy_url, "bypass": "<-loopback>"},
        },
        priority="cmdline",
    )
    s.set("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", 4, priority="cmdline")
    s.set("PLAYWRIGHT_MAX_CONTEXTS", 2, priority="cmdline")
    s.set("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", 30_000, priority="cmdline")
    s.set(
        "PLAYWRIGHT_ABORT_REQUEST",
        BrowserGuard(policy),
        priority="cmdline",
    )
    # Service workers would fetch outside the page's routing: never registered.
    s.set("PLAYWRIGHT_CONTEXTS", {"default": {"service_workers": "block"}}, priority="cmdline")


class FirstError(logging.Handler):
    """Keeps the run's first error in one line (an ERROR log record, or a request the guard refused).

    Why: the reason a crawl failed must reach the job row and ``source list``, not only 100 lines of
    Scrapy log on stderr.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is not None:
            return
        marked = getattr(record, "leaksentinel_error", None)
        if marked is None and record.levelno < logging.ERROR:
            return
        try:
            text = str(marked) if marked is not None else record.getMessage()
            if marked is None and record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text = f"{text}: {type(exc).__name__}: {exc}"
        except Exception:
            text = str(record.msg)
        self.first = one_line(text)


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def summarize(stats: dict[str, Any], seconds: float, source: str) -> dict[str, Any]:
    # A refused request is an error of the run (a tip to an internal URL must not end "ok").
    errors = (
        int(stats.get("log_count/ERROR", 0))
        + int(stats.get("leaksentinel/errors", 0))
        + int(stats.get("leaksentinel/blocked", 0))
    )
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
        "blocked": int(stats.get("leaksentinel/blocked", 0)),
        # Answers in which the site refused us (an API that does not whitelist this deployment).
        "refused": int(stats.get("leaksentinel/refused", 0)),
        # Postings that could not be stored: the run fails and the cursor stays (crawlers.job).
        "store_failed": int(stats.get("leaksentinel/store_failed", 0)),
        # The run wrote its candidate and search indexes (a killed run's postings are indexed next run).
        "indexed": bool(stats.get("leaksentinel/indexed", 0)),
    }


def _emit(summary: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(summary, default=str) + "\n")
    sys.stdout.flush()


def stop_when_orphaned(interval_s: float = 1.0, grace_s: float = 15.0) -> threading.Thread:
    """Stop this run if the process that started it dies (kill -9 of a worker, a lost machine).

    Why: the parent holds the source's lease and records the job; an orphaned run would go on crawling
    after its lease lapsed, beside the next run. SIGTERM lets Scrapy close cleanly (stored postings are
    indexed); a run that has not exited after ``grace_s`` is ended outright."""
    try:  # set by crawlers.job: the parent may already be gone by the time this line runs
        parent = int(os.environ.get(PARENT_ENV, ""))
    except ValueError:
        parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        print("ERROR: the process that started this crawl is gone; stopping", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    thread.start()
    return thread


#: Allocations (of objects the cycle collector tracks) between two young collections; Python's 700 made a
#: crawl of 2,000 postings run ~750 collections (2-3% of its CPU), most of them finding nothing to free.
GC_THRESHOLD = (20_000, 20, 20)


def tune_gc() -> None:
    """Fewer collections, and none re-reading what start-up loaded: the modules, Scrapy's and SQLAlchemy's
    machinery, the registered watches stay for the whole run, so they move out of the collector's view
    (``gc.freeze``) instead of being traversed by every older-generation collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crawlers.run")
    parser.add_argument("--source", type=int, required=True)
    args = parser.parse_args(argv)
    stop_when_orphaned()
    settings = load_settings()
    db = open_database(settings)
    with db.session() as sess:
        source = sess.get(Source, args.source)
        if source is None:
            print(f"unknown source id {args.source}", file=sys.stderr)
            return 2
        sess.expunge(source)
    if source.render and (problem := chromium_problem(settings)):
        # Detected before Scrapy starts: otherwise the run "succeeds" with 0 postings.
        print(f"ERROR: {problem}", file=sys.stderr)
        summary = summarize({"leaksentinel/errors": 1, "finish_reason": "error"}, 0.0, source.name)
        _emit(summary | {"error": problem, "cursor": None})
        return 1
    scrapy_settings = scrapy_settings_for(settings, source)
    spider_cls = SpiderLoader.from_settings(scrapy_settings).load(source.kind)
    process = CrawlerProcess(scrapy_settings)  # the root log handler: LOG_INSTALL_ROOT_HANDLER (True)
    crawler = process.create_crawler(spider_cls)
    started = time.monotonic()
    first_error = FirstError()
    logging.getLogger().addHandler(first_error)
    crash: list[str] = []
    done = process.crawl(
        crawler,
        source_name=source.name,
        source_url=source.url,
        cursor=source.cursor or {},
        options={**(source.options or {}), "proxy": source.proxy, "render": source.render},
    )

    def crashed(failure: Any) -> None:  # the crawl could not start (a pipeline failed to open...)
        crash.append(one_line(f"{failure.type.__name__}: {failure.getErrorMessage()}"))

    if hasattr(done, "addErrback"):
        done.addErrback(crashed)
    tune_gc()
    try:
        process.start()
    finally:
        stop_process_proxy()
    stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    if browser_totals["blocked"]:
        stats["leaksentinel/blocked"] = int(stats.get("leaksentinel/blocked", 0)) + browser_totals["blocked"]
        stats.setdefault("leaksentinel/first_blocked", browser_totals["first_blocked"])
    summary = summarize(stats, time.monotonic() - started, source.name)
    if summary["errors"]:
        summary["error"] = first_error.first or one_line(
            str(stats.get("leaksentinel/first_blocked") or f"{summary['errors']} errors")
        )
    if crash or not summary["finish_reason"]:  # it never ran to a close: nothing it did can be trusted
        summary["errors"] = max(1, summary["errors"])
        reason = crash[0] if crash else first_error.first or "the crawl stopped before it finished"
        summary["error"] = one_line(f"the crawl did not run: {reason}")
        summary["cursor"] = None
        _emit(summary)
        return 1
    if summary["store_failed"]:  # the reason that matters most: a posting was not kept
        summary["error"] = one_line(str(stats.get("leaksentinel/store_error") or "a posting was not stored"))
    spider = crawler.spider
    summary["cursor"] = getattr(spider, "new_cursor", None)
    _emit(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
