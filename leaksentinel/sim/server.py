"""The loopback HTTP server the simulated sites and the test fixtures are built on.

Standard library only (ThreadingHTTPServer in a daemon thread, port 0 by default): it starts in
milliseconds, needs no event loop and so can run beside Scrapy's Twisted reactor or inside a pytest test.
A subclass answers requests in `handle_get` / `handle_post`; the base keeps the lifecycle (start, stop,
context manager), a request log with its lock, and silences the per-request log lines.

    class Hello(LoopbackServer):
        def handle_get(self, request: LoopbackHandler) -> None:
            self.log_request(request.path)
            request.send_body(200, b"hello", "text/plain")

    with Hello() as site:
        httpx.get(site.base_url + "/")
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = ["LoopbackHandler", "LoopbackServer", "Served"]


class Served:
    """Something with `start` and `stop` (a server, or a world of them), and so a context manager."""

    def start(self) -> str:
        """Start serving; returns the base URL."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LoopbackServer


class LoopbackHandler(BaseHTTPRequestHandler):
    """Hands GET and POST to the owning `LoopbackServer`; other methods answer 501."""

    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: tests and the demo print their own output."""

    def version_string(self) -> str:
        return f"{self.server.owner.server_version} {self.sys_version}"

    def do_GET(self) -> None:
        self.server.owner.handle_get(self)

    def do_POST(self) -> None:
        self.server.owner.handle_post(self)

    def send_body(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer `status` with `body` (Content-Type and Content-Length set) and any extra headers."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def unsupported(self) -> None:
        """What the standard library answers for a method the handler has no ``do_`` method for."""
        self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")


class LoopbackServer(Served):
    """A threaded HTTP server on `host`:`port` (0: a free port), served from a daemon thread.

    Subclasses override `handle_get` (and `handle_post` where they take POSTs); `log_request` records
    a path in `requests` under `lock` (re-entrant, so a subclass may hold it while it logs).
    """

    #: The ``Server`` header's product token.
    server_version: ClassVar[str] = BaseHTTPRequestHandler.server_version
    #: The serving thread's name (None: the threading default).
    thread_name: ClassVar[str | None] = None

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[str] = []
        self.lock = threading.RLock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Bind and serve in a daemon thread (a second call does nothing); returns the base URL."""
        if self._server is None:
            server = _HTTPServer((self.host, self.port), LoopbackHandler)
            server.owner = self
            self._server = server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=self.thread_name, daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def base_url(self) -> str:
        """`http://host:port` once started."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    # -- requests --------------------------------------------------------------------------
    def log_request(self, path: str) -> None:
        """Append a request path to `requests`."""
        with self.lock:
            self.requests.append(path)

    def handle_get(self, request: LoopbackHandler) -> None:
        request.unsupported()

    def handle_post(self, request: LoopbackHandler) -> None:
        request.unsupported()
