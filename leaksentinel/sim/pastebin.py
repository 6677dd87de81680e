"""A loopback paste site speaking Pastebin's scraping API, for the demo and the crawler tests.

Standard library only (a `LoopbackServer`: ThreadingHTTPServer in a daemon thread): it starts in
milliseconds, needs no event loop and so can run beside Scrapy's Twisted reactor or inside a pytest test.

Endpoints, as the real API answers them (errors are plain text with HTTP 200):
  GET /api_scraping.php?limit=N[&lang=X]  JSON list, newest first (limit default 50, max 250)
  GET /api_scrape_item.php?i=KEY          raw text, or an error sentinel
  GET /api_scrape_item_meta.php?i=KEY     JSON list with the paste's metadata
  GET /KEY                                an HTML page;  GET /robots.txt  allow all

    with PastebinSite(make_pastes(make_demo_company())) as site:
        httpx.get(f"{site.base_url}/api_scraping.php?limit=10").json()
"""

from __future__ import annotations

import html
import json
from urllib.parse import parse_qs, urlsplit

from leaksentinel.sim.postings import SimPaste
from leaksentinel.sim.server import LoopbackHandler, LoopbackServer

__all__ = [
    "ANSWERS",
    "HTML_ERROR_PAGE",
    "ITEM_NOT_FOUND",
    "ITEM_NOT_READY",
    "ITEM_REMOVED",
    "NOT_WHITELISTED",
    "NOT_WHITELISTED_OLD",
    "SLOW_DOWN",
    "PastebinSite",
]

# The real scraping API's answers (HTTP 200, text/plain) for a deleted/unknown paste, a paste
# still being processed, and a client IP that is not whitelisted.
ITEM_NOT_FOUND = "Error, we cannot find this paste."
ITEM_NOT_READY = "File is not ready for scraping yet. Try again in 1 minute."
NOT_WHITELISTED = (
    "YOUR IP: {ip} DOES NOT HAVE ACCESS. VISIT: https://pastebin.com/doc_scraping_api TO GET ACCESS!"
)
#: The older wording of the same refusal (scrapers in the wild still match both).
NOT_WHITELISTED_OLD = (
    "THIS IP: {ip} DOES NOT HAVE ACCESS. VISIT: https://pastebin.com/scraping TO GET ACCESS!"
)
#: A paste its author or the moderators took down after it was listed.
ITEM_REMOVED = "This paste has been removed!"
#: A rate-limit answer sent as text with HTTP 200 (not a 429): the client must wait and ask again.
SLOW_DOWN = "Please slow down, you are hitting our servers unnecessarily hard! Too many requests."
#: A front-end error page (a CDN or maintenance page) served with HTTP 200 instead of the raw paste.
HTML_ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Pastebin.com - Temporarily unavailable</title></head>"
    "<body><h1>Something went wrong</h1><p>Please try again in a few minutes.</p></body></html>\n"
)
#: What `PastebinSite.answers` may force for a key, besides the paste itself.
ANSWERS = ("empty", "not_found", "removed", "html_error", "not_whitelisted_old")

DEFAULT_LIMIT = 50
MAX_LIMIT = 250


class PastebinSite(LoopbackServer):
    """The simulated Pastebin; thread-safe so tests can publish pastes while a crawl runs.

    Knobs for the unhappy paths a crawler must survive: `not_ready` (keys answered with the
    not-ready sentinel), `answers` (key → one of `ANSWERS`: an empty body, not found, removed, an HTML
    error page, the older not-whitelisted text), `whitelisted = False` (every API call answers the IP
    sentinel), `slow_down_next(n)` (the next n API calls answer `SLOW_DOWN` with HTTP 200) and
    `fail_next(n, status)` (the next n requests answer an HTTP error, 429 with Retry-After).
    """

    server_version = "SimPastebin/1.0"
    thread_name = "sim-pastebin"

    def __init__(self, pastes: list[SimPaste], host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.not_ready: set[str] = set()
        self.answers: dict[str, str] = {}
        self.whitelisted = True
        self._slow_down: dict[str, int] = {}
        self._pastes: dict[str, SimPaste] = {}
        self._fail: list[tuple[int, str]] = []
        for p in pastes:
            self._pastes[p.key] = p

    # -- content ---------------------------------------------------------------------------
    @property
    def pastes(self) -> list[SimPaste]:
        """A snapshot of the published pastes, oldest first."""
        with self.lock:
            return sorted(self._pastes.values(), key=lambda p: p.date)

    def add(self, paste: SimPaste) -> None:
        """Publish a paste (or replace one with the same key) while running."""
        with self.lock:
            self._pastes[paste.key] = paste

    def fail_next(self, n: int, status: int = 429, path: str = "") -> None:
        """Answer the next `n` requests (whose path starts with `path`) with `status` (a 429 carries
        `Retry-After: 1`)."""
        with self.lock:
            self._fail.extend([(status, path)] * n)

    def slow_down_next(self, n: int, path: str = "/api_") -> None:
        """Answer the next `n` calls whose path starts with `path` with the `SLOW_DOWN` text (HTTP 200,
        no Retry-After)."""
        with self.lock:
            self._slow_down[path] = self._slow_down.get(path, 0) + n

    def metadata(self, paste: SimPaste) -> dict[str, str]:
        """The listing/meta entry of a paste: every value a string, as the real API sends."""
        base = self.base_url
        return {
            "scrape_url": f"{base}/api_scrape_item.php?i={paste.key}",
            "full_url": f"{base}/{paste.key}",
            "date": str(paste.date),
            "key": paste.key,
            "size": str(paste.size),
            "expire": "0",
            "title": paste.title,
            "syntax": paste.syntax,
            "user": paste.user,
        }

    # -- HTTP ------------------------------------------------------------------------------
    def handle_get(self, req: LoopbackHandler) -> None:
        with self.lock:
            self.log_request(req.path)
            at = next((i for i, (_, p) in enumerate(self._fail) if req.path.startswith(p)), None)
            failure = self._fail.pop(at)[0] if at is not None else None
        if failure is not None:
            headers = {"Retry-After": "1"} if failure == 429 else {}
            req.send_body(failure, f"HTTP {failure}\n".encode(), "text/plain; charset=utf-8", headers)
            return
        url = urlsplit(req.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path
        with self.lock:
            slow = next((p for p, n in self._slow_down.items() if n > 0 and path.startswith(p)), None)
            if slow is not None:
                self._slow_down[slow] -= 1
        if slow is not None:
            self._text(req, SLOW_DOWN)
        elif (
            path in ("/api_scraping.php", "/api_scrape_item.php", "/api_scrape_item_meta.php")
            and not self.whitelisted
        ):
            self._text(req, NOT_WHITELISTED.format(ip=req.client_address[0]))
        elif path == "/api_scraping.php":
            self._listing(req, query)
        elif path == "/api_scrape_item.php":
            self._item(req, query.get("i", ""))
        elif path == "/api_scrape_item_meta.php":
            self._meta(req, query.get("i", ""))
        elif path == "/robots.txt":
            self._text(req, "User-agent: *\nAllow: /\n")
        elif path == "/":
            self._html(req, 200, "Pastebin (simulated)", "<p>Simulated paste site.</p>")
        else:
            self._page(req, path.lstrip("/"))

    def _listing(self, req: LoopbackHandler, query: dict[str, str]) -> None:
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            limit = DEFAULT_LIMIT
        limit = max(1, min(limit, MAX_LIMIT))
        lang = query.get("lang")
        with self.lock:
            ordered = sorted(self._pastes.values(), key=lambda p: p.date, reverse=True)
        if lang:
            ordered = [p for p in ordered if p.syntax == lang]
        self._json(req, [self.metadata(p) for p in ordered[:limit]])

    def _lookup(self, key: str) -> SimPaste | None:
        with self.lock:
            return self._pastes.get(key)

    def _item(self, req: LoopbackHandler, key: str) -> None:
        if key in self.not_ready:
            self._text(req, ITEM_NOT_READY)
            return
        with self.lock:
            forced = self.answers.get(key)
        if forced == "empty":
            req.send_body(200, b"", "text/plain; charset=utf-8")
            return
        if forced == "html_error":
            req.send_body(200, HTML_ERROR_PAGE.encode("utf-8"), "text/html; charset=utf-8")
            return
        if forced in ("not_found", "removed", "not_whitelisted_old"):
            texts = {
                "not_found": ITEM_NOT_FOUND,
                "removed": ITEM_REMOVED,
                "not_whitelisted_old": NOT_WHITELISTED_OLD.format(ip=req.client_address[0]),
            }
            self._text(req, texts[forced])
            return
        paste = self._lookup(key)
        self._text(req, paste.text if paste is not None else ITEM_NOT_FOUND)

    def _meta(self, req: LoopbackHandler, key: str) -> None:
        paste = self._lookup(key)
        if paste is None:
            self._text(req, ITEM_NOT_FOUND)
        else:
            self._json(req, [self.metadata(paste)])

    def _page(self, req: LoopbackHandler, key: str) -> None:
        paste = self._lookup(key)
        if paste is None:
            self._html(req, 404, "Not Found (#404)", "<p>This page is no longer available.</p>")
            return
        body = (
            f'<div class="info-top"><h1>{html.escape(paste.title or "Untitled")}</h1>'
            f'<div class="username">{html.escape(paste.user or "a guest")}</div></div>\n'
            f'<textarea class="textarea" readonly>{html.escape(paste.text)}</textarea>'
        )
        self._html(req, 200, f"{paste.title or 'Untitled'} - Pastebin.com", body)

    @staticmethod
    def _text(req: LoopbackHandler, text: str) -> None:
        req.send_body(200, text.encode("utf-8"), "text/plain; charset=utf-8")

    @staticmethod
    def _json(req: LoopbackHandler, data: object) -> None:
        req.send_body(
            200, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"
        )

    @staticmethod
    def _html(req: LoopbackHandler, status: int, title: str, body: str) -> None:
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>\n<body>{body}</body></html>\n"
        )
        req.send_body(status, page.encode("utf-8"), "text/html; charset=utf-8")
