"""The crawler cannot be turned on the inside: every request it makes goes through the network guard.

Two real loopback servers: the "public" site on 127.0.0.1 (allowed through
``LEAKSENTINEL_CRAWL_ALLOW_NETWORKS=127.0.0.1/32``) and the "internal" service on 127.0.0.2 (loopback,
so forbidden once private targets are not allowed). Each attack makes the real crawler (``run_crawl``,
a ``crawlers.run`` child process) try to reach the internal server; it must get no request and nothing
of it may be stored.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db import open_database
from core.models import AuditLog, Posting, Source
from core.netguard import UnsafeTarget, check_url
from core.settings import load_settings
from crawlers.job import run_crawl
from leaksentinel.actions.sources import add_source

SECRET = "INTERNAL-ONLY alice@acme-bank.example:hunter2"

Route = Callable[[str], tuple[int, dict[str, str], bytes]]


class Site:
    """A loopback HTTP server on ``host`` answering ``routes[path]``; every request path is logged."""

    def __init__(self, host: str, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = routes or {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                route = site.routes.get(self.path.split("?", 1)[0])
                status, headers, body = route(self.path) if route else (404, {}, b"not found")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def html(body: str, status: int = 200, **headers: str) -> Route:
    return lambda _path: (status, {"Content-Type": "text/html; charset=utf-8", **headers}, body.encode())


def redirect(location: str) -> Route:
    return lambda _path: (302, {"Location": location}, b"")


@pytest.fixture
def internal() -> Iterator[Site]:
    """The service the crawler must never reach (any path answers the secret)."""
    site = Site("127.0.0.2")
    secret_page = html(f"<html><body><pre>{SECRET}</pre></body></html>")
    site.routes = {
        p: secret_page for p in ("/secret", "/robots.txt", "/fetched", "/moved", "/latest/meta-data/")
    }
    yield site
    site.close()


@pytest.fixture
def public() -> Iterator[Site]:
    site = Site("127.0.0.1")
    yield site
    site.close()


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private targets refused (as on a server), except the public test site's own address."""
    monkeypatch.setenv("LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", "false")
    monkeypatch.setenv("LEAKSENTINEL_CRAWL_ALLOW_NETWORKS", "127.0.0.1/32")


def stored_texts() -> list[str]:
    with open_database(load_settings()).session() as sess:
        return [p.text or "" for p in sess.scalars(select(Posting))]


def crawl(name: str, url: str, **kwargs: Any) -> dict[str, Any]:
    settings = load_settings()
    add_source(open_database(settings), name, kwargs.pop("kind", "generic"), url, **kwargs)
    return run_crawl(settings, name, timeout_s=120)


@pytest.mark.usefixtures("guarded")
def test_a_302_to_the_internal_server_is_not_followed(public: Site, internal: Site) -> None:
    public.routes["/report"] = redirect(f"{internal.base}/secret")
    summary = crawl("tip1", f"{public.base}/report")
    assert internal.requests == []
    assert not [t for t in stored_texts() if "INTERNAL-ONLY" in t]
    assert summary["blocked"] == 1 and summary["errors"] >= 1, summary
    assert summary["error"] == "blocked: 127.0.0.2 is a loopback address", summary


@pytest.mark.usefixtures("guarded")
def test_a_meta_refresh_to_the_internal_server_is_not_followed(public: Site, internal: Site) -> None:
    public.routes["/refresh"] = html(
        f'<html><head><meta http-equiv="refresh" content="0; url={internal.base}/secret"></head><body></body></html>'
    )
    summary = crawl("tip2", f"{public.base}/refresh")
    assert internal.requests == []
    assert not [t for t in stored_texts() if "INTERNAL-ONLY" in t]
    assert summary["blocked"] == 1 and "127.0.0.2" in summary["error"], summary


@pytest.mark.usefixtures("guarded")
def test_a_feed_item_linking_to_the_internal_server_is_not_fetched(public: Site, internal: Site) -> None:
    feed = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>leaks</title><link>{public.base}/</link>
<item><title>internal</title><link>{internal.base}/secret</link><guid>urn:x:1</guid></item>
<item><title>public</title><link>{public.base}/post</link><guid>urn:x:2</guid></item>
</channel></rss>"""
    public.routes["/feed.xml"] = lambda _p: (200, {"Content-Type": "application/rss+xml"}, feed.encode())
    public.routes["/post"] = html("<html><body><p>public post bob@shop.example</p></body></html>")
    summary = crawl("feed", f"{public.base}/feed.xml", kind="rss")
    assert internal.requests == []
    texts = stored_texts()
    assert not [t for t in texts if "INTERNAL-ONLY" in t]
    assert [t for t in texts if "public post" in t]  # the public item is still read
    assert summary["blocked"] == 1, summary


@pytest.mark.usefixtures("guarded")
def test_robots_txt_redirected_to_the_internal_server_is_not_fetched(public: Site, internal: Site) -> None:
    public.routes["/robots.txt"] = redirect(f"{internal.base}/robots.txt")
    public.routes["/page"] = html("<html><body><p>a public page carol@shop.example</p></body></html>")
    summary = crawl("robots", f"{public.base}/page")
    assert "/robots.txt" in public.requests  # robots.txt was asked for, from the public site only
    assert internal.requests == []
    assert [t for t in stored_texts() if "a public page" in t]
    assert summary["blocked"] == 1, summary


@pytest.mark.usefixtures("guarded")
def test_the_backslash_parser_mismatch_is_refused_by_check_url_and_by_the_crawler(
    public: Site, internal: Site
) -> None:
    # urllib reads host 127.0.0.1 (allowed); Scrapy and browsers read host 127.0.0.2 (internal).
    port = internal.server.server_address[1]
    tricky = f"http://127.0.0.2:{port}\\@127.0.0.1:{public.server.server_address[1]}/secret"
    with pytest.raises(UnsafeTarget, match="ambiguous"):
        check_url(tricky, allow_private=True)
    with pytest.raises(UnsafeTarget, match="ambiguous"):
        check_url("http://169.254.169.254\\@93.184.215.14/", allow_private=False)
    public.routes["/report"] = redirect(tricky)
    summary = crawl("tip3", f"{public.base}/report")
    assert internal.requests == []
    assert public.requests == ["/robots.txt", "/report"]  # the redirect's target is not the public site
    assert summary["blocked"] == 1 and "127.0.0.2" in summary["error"], summary


@pytest.mark.usefixtures("guarded")
def test_a_start_url_on_an_internal_literal_or_name_is_refused(internal: Site) -> None:
    port = internal.server.server_address[1]
    summary = crawl("lit", f"http://2130706434:{port}/secret")  # 127.0.0.2 as one decimal number
    assert summary["status"] == "failed" and summary["fetched"] == 0, summary
    assert summary["error"].startswith("blocked:") and "127.0.0.2" in summary["error"], summary
    assert internal.requests == []


def test_a_name_resolving_to_a_forbidden_address_is_refused_at_connect_time(
    monkeypatch: pytest.MonkeyPatch, public: Site
) -> None:
    """No network allowed: ``localhost`` is a name (no literal), so only the resolver can refuse it."""
    monkeypatch.setenv("LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", "false")
    public.routes["/page"] = html("<html><body>local page</body></html>")
    summary = crawl("name", f"http://localhost:{public.server.server_address[1]}/page")
    assert summary["status"] == "failed" and summary["fetched"] == 0, summary
    assert summary["error"].startswith("blocked: localhost: 127.0.0.1 is a loopback address"), summary
    assert summary["blocked"] == 2  # robots.txt and the page, each refused once (no retries)
    assert public.requests == []


def test_with_private_targets_allowed_the_same_redirect_is_followed(public: Site, internal: Site) -> None:
    """The embedded default allows private targets: the guard must not break local crawls."""
    public.routes["/report"] = redirect(f"{internal.base}/secret")
    summary = crawl("tip4", f"{public.base}/report")
    assert summary["status"] == "ok" and summary["blocked"] == 0, summary
    assert internal.requests == ["/robots.txt", "/secret"]


@pytest.mark.usefixtures("guarded")
def test_a_crawl_tip_task_with_an_internal_url_is_refused_and_recorded(internal: Site) -> None:
    from crawlers.tasks import crawl_tip

    url = f"{internal.base}/secret"
    result = crawl_tip.run(url, "enqueued straight into the broker")  # the task body, as a worker runs it
    assert result["refused"] == "blocked: 127.0.0.2 is a loopback address"
    assert internal.requests == []
    with open_database(load_settings()).session() as sess:
        assert sess.scalars(select(Source)).all() == []  # no tip source: nothing to crawl later
        audit = sess.scalars(select(AuditLog).where(AuditLog.action == "tip.refused")).one()
    assert audit.detail == {"url": url, "reason": "blocked: 127.0.0.2 is a loopback address"}


def test_a_render_source_without_chromium_fails_with_the_reason(public: Site) -> None:
    public.routes["/board"] = html("<html><body><div class='post'>x</div></body></html>")
    settings = load_settings(chromium_path="/nonexistent/chromium")
    add_source(open_database(settings), "js", "generic", f"{public.base}/board", render=True)
    summary = run_crawl(settings, "js", timeout_s=60)
    assert summary["status"] == "failed", summary
    assert summary["error"] == "Chromium not found at /nonexistent/chromium"
    assert summary["errors"] == 1 and public.requests == []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
@pytest.mark.usefixtures("guarded")
def test_a_rendered_page_cannot_fetch_or_navigate_to_the_internal_server(
    public: Site, internal: Site
) -> None:
    script = f"""
fetch("{internal.base}/fetched").catch(() => {{}});
const x = new XMLHttpRequest(); x.open("GET", "{internal.base}/secret"); x.send();
setTimeout(() => {{ location = "{internal.base}/moved"; }}, 10);
"""
    public.routes["/board"] = html(
        f"<html><body><div class='post' id='p1'>public post dave@shop.example</div>"
        f"<iframe src='{internal.base}/secret'></iframe><script>{script}</script></body></html>"
    )
    settings = load_settings(chromium_path=shutil.which("chromium") or "/usr/bin/chromium")
    add_source(
        open_database(settings),
        "jsboard",
        "generic",
        f"{public.base}/board",
        render=True,
        options={"item": "div.post"},
    )
    summary = run_crawl(settings, "jsboard", timeout_s=120)
    assert internal.requests == []
    assert not [t for t in stored_texts() if "INTERNAL-ONLY" in t]
    assert summary["blocked"] >= 2 and "127.0.0.2" in summary["error"], summary


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
@pytest.mark.usefixtures("guarded")
def test_a_rendered_page_redirected_to_the_internal_server_is_not_reached(
    public: Site, internal: Site
) -> None:
    """Chromium follows an HTTP redirect without routing it again; the browser proxy refuses it."""
    public.routes["/board"] = redirect(f"{internal.base}/secret")
    settings = load_settings(chromium_path=shutil.which("chromium") or "/usr/bin/chromium")
    add_source(open_database(settings), "jsredir", "generic", f"{public.base}/board", render=True)
    summary = run_crawl(settings, "jsredir", timeout_s=120)
    assert internal.requests == []  # not even the request: the proxy connects to checked addresses only
    assert "/board" in public.requests
    assert not [t for t in stored_texts() if "INTERNAL-ONLY" in t]
    # Two refusals: the proxy's (the redirected request) and the late middleware's (the page it ended on).
    assert summary["blocked"] == 2 and summary["error"] == "blocked: 127.0.0.2 is a loopback address", summary


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
@pytest.mark.usefixtures("guarded")
def test_a_render_source_with_its_own_proxy_is_chained_through_it(public: Site) -> None:
    """The browser's requests go out through the source's ``--proxy`` (scrapy-playwright ignores
    ``meta["proxy"]``): the run's browser proxy chains them to it."""
    from core.netguard import TargetPolicy
    from crawlers.browserproxy import BrowserProxy

    public.routes["/board"] = html(
        "<html><body><div class='post'>via proxy erin@shop.example</div></body></html>"
    )
    upstream = BrowserProxy(TargetPolicy(allow_private=True))  # a plain forward proxy for the test
    upstream_url = upstream.start_in_thread()
    try:
        settings = load_settings(chromium_path=shutil.which("chromium") or "/usr/bin/chromium")
        add_source(
            open_database(settings),
            "jsproxied",
            "generic",
            f"{public.base}/board",
            render=True,
            proxy=upstream_url,
            options={"item": "div.post"},
        )
        summary = run_crawl(settings, "jsproxied", timeout_s=120)
    finally:
        upstream.stop()
    assert summary["status"] == "ok" and summary["postings"] == 1, summary
    board = f"127.0.0.1:{public.server.server_address[1]}"
    assert upstream.forwarded.count(board) >= 2  # robots.txt (Scrapy) and the page (Chromium)
    assert public.requests.count("/board") == 1
