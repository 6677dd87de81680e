"""A loopback webhook receiver that records deliveries, for the demo and the alerting tests.

Standard library only, a `LoopbackServer` served from a daemon thread. It records every POST (failed ones too,
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
from typing import Any

from leaksentinel.sim.server import LoopbackHandler, LoopbackServer

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


class WebhookReceiver(LoopbackServer):
    """Records every POST; answers 200 `{"ok": true}` unless told to fail with `fail_next`."""

    server_version = "SimWebhook/1.0"
    thread_name = "sim-webhook"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = "/hook") -> None:
        super().__init__(host, port)
        self.path = path
        self.received: list[Received] = []
        self._fail: list[int] = []
        self._cond = threading.Condition(self.lock)

    def start(self) -> str:
        """Serve in a daemon thread; returns the URL to subscribe (any path is recorded)."""
        super().start()
        return self.url

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

    # -- HTTP ------------------------------------------------------------------------------
    def handle_post(self, request: LoopbackHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            _answer(request, 413, {"ok": False, "error": "body too large"})
            return
        body = request.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        status = self._record(request.path, headers, body)
        _answer(request, status, {"ok": status < 400})

    def handle_get(self, request: LoopbackHandler) -> None:
        _answer(request, 200, {"ok": True, "received": len(self.received)})


def _answer(request: LoopbackHandler, status: int, payload: dict[str, Any]) -> None:
    request.send_body(status, json.dumps(payload).encode(), "application/json")
