"""The browser's guarded egress proxy (crawlers/browserproxy.py), with real sockets on loopback.

"Public" targets live on 127.0.0.1 (allowed through ``allow_networks``), "internal" ones on 127.0.0.2
(loopback, so refused). Every test checks what the target server actually saw, not only the reply.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scrapy.settings import Settings as ScrapySettings

from core.netguard import TargetPolicy
from core.settings import load_settings
from crawlers.browserproxy import BrowserProxy, stop_process_proxy
from crawlers.run import apply_render_settings

PUBLIC_ONLY = TargetPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))


class Web:
    """A loopback HTTP server logging every request path."""

    def __init__(self, host: str) -> None:
        self.requests: list[str] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                web.requests.append(self.path)
                body = b"<html><body>hello from " + host.encode() + b"</body></html>"
                if self.path.endswith(".js"):
                    body = b"document.title = 'script ran';"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Echo:
    """A raw TCP echo server (a stand-in for a TLS server behind a CONNECT tunnel); counts connections."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def public_web() -> Iterator[Web]:
    web = Web("127.0.0.1")
    yield web
    web.close()


@pytest.fixture
def internal_web() -> Iterator[Web]:
    web = Web("127.0.0.2")
    yield web
    web.close()


@pytest.fixture
def proxies() -> Iterator[list[BrowserProxy]]:
    started: list[BrowserProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


def start(proxies: list[BrowserProxy], policy: TargetPolicy, **kwargs: Any) -> BrowserProxy:
    proxy = BrowserProxy(policy, **kwargs)
    proxy.start_in_thread()
    proxies.append(proxy)
    return proxy


def ask(proxy: BrowserProxy, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send ``raw`` to the proxy and read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def recv_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_connect_to_a_forbidden_address_is_refused_and_recorded(proxies: list[BrowserProxy]) -> None:
    internal = Echo("127.0.0.2")
    seen: list[tuple[str, str]] = []
    proxy = start(proxies, PUBLIC_ONLY, on_refusal=lambda reason, target: seen.append((reason, target)))
    reply = ask(proxy, f"CONNECT 127.0.0.2:{internal.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    internal.close()
    assert reply.startswith(b"HTTP/1.1 403 ")
    assert b"blocked: 127.0.0.2 is a loopback address" in reply
    assert internal.connections == 0
    assert proxy.refusals == ["blocked: 127.0.0.2 is a loopback address"]
    assert seen == [("blocked: 127.0.0.2 is a loopback address", f"127.0.0.2:{internal.port}")]


def test_an_absolute_form_get_to_a_forbidden_address_is_refused(
    proxies: list[BrowserProxy], internal_web: Web
) -> None:
    proxy = start(proxies, PUBLIC_ONLY)
    url = f"http://127.0.0.2:{internal_web.port}/secret"
    reply = ask(proxy, f"GET {url} HTTP/1.1\r\nHost: 127.0.0.2:{internal_web.port}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 ") and b"127.0.0.2 is a loopback address" in reply
    assert internal_web.requests == []


def test_a_host_name_is_resolved_by_the_proxy_and_every_address_checked(
    proxies: list[BrowserProxy], public_web: Web
) -> None:
    """``localhost`` is a name: only the proxy's own resolution can find that it is 127.0.0.1."""
    proxy = start(proxies, TargetPolicy(block_networks=(ipaddress.ip_network("127.0.0.1/32"),)))
    reply = ask(proxy, f"GET http://localhost:{public_web.port}/page HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 ")
    assert b"blocked: localhost: 127.0.0.1 is in the blocked network 127.0.0.1/32" in reply
    assert public_web.requests == []


def test_an_allowed_get_is_forwarded_once_in_origin_form(
    proxies: list[BrowserProxy], public_web: Web
) -> None:
    proxy = start(proxies, PUBLIC_ONLY)
    reply = ask(
        proxy,
        f"GET http://127.0.0.1:{public_web.port}/page?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{public_web.port}\r\n"
        "Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n".encode(),
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ") and b"Connection: close" in head
    assert body == b"<html><body>hello from 127.0.0.1</body></html>"
    assert public_web.requests == ["/page?q=1"]
    assert proxy.refusals == []


def test_an_allowed_connect_tunnels_both_ways(proxies: list[BrowserProxy]) -> None:
    echo = Echo("127.0.0.1")
    proxy = start(proxies, PUBLIC_ONLY)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert recv_head(sock) == b"HTTP/1.1 200 Connection established\r\n\r\n"
            sock.sendall(b"\x16\x03\x01 not really TLS")
            assert sock.recv(100) == b"\x16\x03\x01 not really TLS"
    finally:
        echo.close()
    assert echo.connections == 1


def test_the_proxy_itself_is_never_a_target(proxies: list[BrowserProxy]) -> None:
    """Even with every private address allowed, a request to the proxy's own port would loop."""
    proxy = start(proxies, TargetPolicy(allow_private=True))
    reply = ask(proxy, f"GET http://127.0.0.1:{proxy.port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 ") and b"is the browser proxy itself" in reply
    reply = ask(proxy, f"CONNECT localhost:{proxy.port} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 ") and b"is the browser proxy itself" in reply


def test_oversized_or_malformed_heads_are_refused(proxies: list[BrowserProxy], public_web: Web) -> None:
    proxy = start(proxies, PUBLIC_ONLY, max_head_bytes=4096, max_headers=20)
    target = f"http://127.0.0.1:{public_web.port}/"
    big = f"GET {target} HTTP/1.1\r\nX-Big: {'a' * 10_000}\r\n\r\n".encode()
    assert ask(proxy, big).startswith(b"HTTP/1.1 431 ")
    many = f"GET {target} HTTP/1.1\r\n".encode() + b"".join(b"X-%d: 1\r\n" % i for i in range(30)) + b"\r\n"
    assert ask(proxy, many).startswith(b"HTTP/1.1 431 ")
    assert ask(proxy, b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert ask(proxy, f"GET {target} HTTP/1.1\r\nBad Header\r\n\r\n".encode()).startswith(b"HTTP/1.1 400 ")
    assert ask(proxy, b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert ask(proxy, f"GET ftp://127.0.0.1:{public_web.port}/ HTTP/1.1\r\n\r\n".encode()).startswith(
        b"HTTP/1.1 400 "
    )
    chunked = f"POST {target} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode()
    assert ask(proxy, chunked).startswith(b"HTTP/1.1 411 ")
    assert public_web.requests == []


def test_an_idle_client_is_disconnected(proxies: list[BrowserProxy]) -> None:
    echo = Echo("127.0.0.1")
    proxy = start(proxies, PUBLIC_ONLY, idle_timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\n")  # a head that never ends
            began = time.monotonic()
            assert sock.recv(100) == b""
            assert time.monotonic() - began < 3
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode())
            assert recv_head(sock).startswith(b"HTTP/1.1 200 ")
            began = time.monotonic()
            assert sock.recv(100) == b""  # an idle tunnel ends too
            assert time.monotonic() - began < 3
    finally:
        echo.close()


def test_connections_over_the_cap_are_turned_away_and_stop_closes_the_rest(
    proxies: list[BrowserProxy],
) -> None:
    proxy = start(proxies, PUBLIC_ONLY, max_connections=2, idle_timeout=30)
    held = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.2)  # both accepted
        assert ask(proxy, b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503 ")
        proxy.stop()
        for sock in held:
            assert sock.recv(100) == b""  # closed by the shutdown, long before the idle timeout
    finally:
        for sock in held:
            sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_requests_are_chained_through_the_upstream_proxy_whose_address_is_checked(
    proxies: list[BrowserProxy], public_web: Web, internal_web: Web
) -> None:
    """A source's own proxy: only its address is checked (it resolves names); target literals still are."""
    upstream = start(proxies, TargetPolicy(allow_private=True))
    proxy = start(proxies, PUBLIC_ONLY, upstream=f"http://user:pw@127.0.0.1:{upstream.port}")
    reply = ask(proxy, f"GET http://localhost:{public_web.port}/via HTTP/1.1\r\n\r\n".encode())
    assert reply.endswith(b"hello from 127.0.0.1</body></html>"), reply
    assert public_web.requests == ["/via"]
    echo = Echo("127.0.0.1")
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(f"CONNECT localhost:{echo.port} HTTP/1.1\r\n\r\n".encode())
            assert recv_head(sock).startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"ping")
            assert sock.recv(10) == b"ping"
    finally:
        echo.close()
    reply = ask(proxy, f"GET http://127.0.0.2:{internal_web.port}/secret HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 ") and b"127.0.0.2 is a loopback address" in reply
    assert internal_web.requests == []
    # An upstream on a forbidden address is refused as such.
    strict = start(proxies, TargetPolicy(), upstream=f"127.0.0.1:{upstream.port}")
    reply = ask(strict, f"GET http://localhost:{public_web.port}/no HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 ") and b"blocked: proxy 127.0.0.1 is a loopback address" in reply
    assert public_web.requests == ["/via"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_chromium_launched_as_render_runs_do_sends_loopback_and_names_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch, internal_web: Web
) -> None:
    """No route handler here: the proxy alone stops a subresource whose host name is forbidden.

    Playwright's own loopback default is switched off, so the launch options written by
    ``apply_render_settings`` (``bypass: <-loopback>``) are what sends loopback targets to the proxy.
    """
    from playwright.sync_api import sync_playwright

    from crawlers import browserproxy

    monkeypatch.setenv("PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_LOOPBACK", "1")
    forbidden = Web("127.0.0.1")  # reached by name (localhost), blocked by network
    page_url = f"http://127.0.0.2:{internal_web.port}/page"
    s = ScrapySettings()
    policy = TargetPolicy(allow_private=True, block_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    settings = load_settings(chromium_path=shutil.which("chromium") or "/usr/bin/chromium")
    try:
        apply_render_settings(s, settings, policy)
        proxy = browserproxy._process
        assert proxy is not None
        html = (
            f"<html><body><script src='http://localhost:{forbidden.port}/x.js'></script>"
            f"<script>fetch('http://localhost:{forbidden.port}/fetched').catch(() => {{}});</script>"
            "</body></html>"
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(**s.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
            try:
                page = browser.new_page()
                page.goto(page_url)
                page.set_content(html)
                page.wait_for_timeout(500)
            finally:
                browser.close()
        assert internal_web.requests[0] == "/page"
        assert f"127.0.0.2:{internal_web.port}" in proxy.forwarded  # loopback was not bypassed
        assert forbidden.requests == []
        assert proxy.refusals, "the forbidden subresource never reached the proxy"
        assert set(proxy.refusals) == {"blocked: localhost: 127.0.0.1 is in the blocked network 127.0.0.1/32"}
    finally:
        stop_process_proxy()
        forbidden.close()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("openssl") is None,
    reason="Debian's chromium or openssl is not installed",
)
def test_chromium_https_goes_through_checked_connect_tunnels(tmp_path: Any) -> None:
    """https pages: Chromium asks for a CONNECT tunnel; allowed ones carry TLS, forbidden ones never connect."""
    import ssl
    import subprocess

    from playwright.sync_api import sync_playwright

    from crawlers import browserproxy

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    make_cert = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x"]
    subprocess.run(
        [*make_cert, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    web = Web("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    web.server.socket = context.wrap_socket(web.server.socket, server_side=True)
    internal = Echo("127.0.0.2")
    s = ScrapySettings()
    settings = load_settings(chromium_path=shutil.which("chromium") or "/usr/bin/chromium")
    try:
        apply_render_settings(s, settings, PUBLIC_ONLY)
        proxy = browserproxy._process
        assert proxy is not None
        with sync_playwright() as pw:
            browser = pw.chromium.launch(**s.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
            try:
                page = browser.new_page(ignore_https_errors=True)
                page.goto(f"https://127.0.0.1:{web.port}/page")
                assert "hello from 127.0.0.1" in page.content()
                page.evaluate(f"fetch('https://127.0.0.2:{internal.port}/secret').catch(() => null)")
                page.wait_for_timeout(300)
            finally:
                browser.close()
        assert web.requests[0] == "/page"
        assert f"127.0.0.1:{web.port}" in proxy.forwarded
        assert internal.connections == 0
        assert "blocked: 127.0.0.2 is a loopback address" in proxy.refusals
    finally:
        stop_process_proxy()
        web.close()
        internal.close()
