"""Scrapy settings for every leaksentinel crawl (``scrapy.cfg`` points here).

Why here: Scrapy wires the item pipelines into a crawl by dotted path, so crawlers never import
pipelines; per-source values (proxy, render, budgets) are applied by crawlers.run on top of these.
"""

from scrapy.settings.default_settings import EXTENSIONS_BASE as _scrapy_extensions_base

BOT_NAME = "leaksentinel"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

ITEM_PIPELINES = {
    "pipelines.normalize.NormalizePipeline": 100,
    "pipelines.fingerprint.FingerprintPipeline": 200,
    "pipelines.detect.DetectPipeline": 300,
    "pipelines.store.StorePipeline": 400,
}

DOWNLOADER_MIDDLEWARES = {
    "crawlers.middlewares.source_options.SourceOptionsMiddleware": 50,
    # The network guard: right after the source's proxy is set (before robots.txt is even asked for),
    # and again last before the download (after Scrapy's HttpProxyMiddleware, 750).
    "crawlers.middlewares.netguard.NetGuardMiddleware": 60,
    "crawlers.middlewares.netguard.NetGuardLateMiddleware": 990,
    # Before Scrapy's RetryMiddleware (550) sees the response, so a Retry-After wait is not a failure.
    "crawlers.middlewares.retry_after.RetryAfterMiddleware": 560,
}
EXTENSIONS = {
    "crawlers.extensions.budget.ByteBudget": 500,
    "crawlers.extensions.progress.CrawlProgress": 510,
    # A posting that fails in any pipeline stage fails the run and keeps the cursor.
    "crawlers.extensions.lost_items.LostItems": 520,
}
# Scrapy's own extensions without the telnet console and the remote control: never used by a crawl job,
# and importing them loads aiohttp and twisted.conch (~6 MB and ~0.2 CPU-s per crawl process). Left out of
# the base rather than set to None in EXTENSIONS: Scrapy imports every EXTENSIONS key, None or not.
_never_loaded = ("scrapy.extensions.telnet.TelnetConsole", "scrapy.extensions.remote_control.RemoteControl")
EXTENSIONS_BASE = {k: v for k, v in _scrapy_extensions_base.items() if k not in _never_loaded}
#: Bytes one run may read (0: no budget); a source's `byte_budget` option overrides it.
LEAKSENTINEL_BYTE_BUDGET = 200_000_000
LEAKSENTINEL_RETRY_AFTER_MAX_S = 120.0
LEAKSENTINEL_RETRY_AFTER_TIMES = 3

# Every address a host resolves to is checked before Twisted connects (crawlers/resolver.py).
TWISTED_DNS_RESOLVER = "crawlers.resolver.GuardedResolver"
#: Whether crawls may reach loopback/private networks; crawlers.run sets the operator's decision
#: (Settings.private_targets_allowed). Refused when a crawl is started any other way.
LEAKSENTINEL_ALLOW_PRIVATE_TARGETS = False
#: Private networks a crawl may reach all the same, and networks it may never reach ("10.1.0.0/16").
LEAKSENTINEL_CRAWL_ALLOW_NETWORKS: list[str] = []
LEAKSENTINEL_CRAWL_BLOCK_NETWORKS: list[str] = []

USER_AGENT = "leaksentinel/0.1"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
#: Items (and requests) of one response handled at once. Scrapy starts this many asyncio tasks for every
#: response, whatever it yields; its default of 100 cost a crawl ~100 tasks per paste (about a tenth of
#: its CPU). The item pipelines are synchronous, so more than a few never run at once anyway.
CONCURRENT_ITEMS = 4
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 20_000_000
DOWNLOAD_WARNSIZE = 5_000_000
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
LOG_FORMAT = "%(asctime)s [%(name)s] %(levelname)s: %(message)s"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
# A crawl run's page budget; 0 is unlimited.
CLOSESPIDER_PAGECOUNT = 0
LEAKSENTINEL_PASTEBIN_LIMIT = 100
