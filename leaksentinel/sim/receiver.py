"""A loopback webhook receiver that records deliveries, for the demo and the alerting tests.

Standard library only, served from a daemon thread. It records every POST (failed ones too,
so a test can check that retries carry the same idempotency key), can be told to fail the
next n requests to exercise retry and dead-letter paths, and lets a test block until a given
number of deliveries arrived instead of sleeping.

    with WebhookReceiver() as hook:
        ...  # subscribe hook.url, raise an alert
        assert hook.wait_for(1, timeout=10)
        event = hook.received[0].json()
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Received", "WebhookReceiver"]

MAX_BODY = 10 * 1024 * 1024  # a receiver that reads unbounded bodies is a test hazard, not a feature


@dataclass
class Received:
    """One POST as it arrived; `status` is what the receiver answered (200 unless failing)."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.time() on arrival
    status: int = 200

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: WebhookReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "SimWebhook/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: tests and the demo print their own output."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, {"ok": False, "error": "body too large"})
            return
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = self.server.receiver._record(self.path, headers, body)
        self._answer(status, {"ok": status < 400})

    def do_GET(self) -> None:
        self._answer(200, {"ok": True, "received": len(self.server.receiver.received)})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class WebhookReceiver:
    """Records every POST; answers 200 `{"ok": true}` unless told to fail with `fail_next`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = "/hook") -> None:
        self.host = host
        self.port = port
        self.path = path
        self.received: list[Received] = []
        self._fail: list[int] = []
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Serve in a daemon thread; returns the URL to subscribe (any path is recorded)."""
        if self._server is None:
            server = _Server((self.host, self.port), _Handler)
            server.receiver = self
            self._server = server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name="sim-webhook", daemon=True
            )
            self._thread.start()
        return self.url

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

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://host:port` once started."""
        if self._server is None:
            raise RuntimeError("WebhookReceiver is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The webhook URL: base URL plus `path`."""
        return self.base_url + self.path

    @property
    def delivered(self) -> list[Received]:
        """The POSTs that were answered with success (what the sender may count as delivered)."""
        with self._cond:
            return [r for r in self.received if r.status < 400]

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next `n` POSTs with `status`, then recover."""
        with self._cond:
            self._fail.extend([status] * n)

    def wait_for(self, count: int, timeout: float, *, ok_only: bool = False) -> bool:
        """Block until `count` POSTs arrived (only successful ones with `ok_only`); False on timeout."""

        def enough() -> bool:
            seen = self.received if not ok_only else [r for r in self.received if r.status < 400]
            return len(seen) >= count

        with self._cond:
            return self._cond.wait_for(enough, timeout=timeout)

    def clear(self) -> None:
        """Forget what was received (between phases of one test)."""
        with self._cond:
            self.received.clear()

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._cond:
            status = self._fail.pop(0) if self._fail else 200
            self.received.append(Received(path, headers, body, time.time(), status))
            self._cond.notify_all()
        return status
