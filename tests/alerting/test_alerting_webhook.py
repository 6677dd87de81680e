"""Webhook channel against a real HTTP receiver on loopback that verifies signatures like a customer would."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from alerting.channels import WebhookChannel, build_channel
from alerting.channels.base import Channel, DeliveryResult
from alerting.channels.webhook import MAX_RESPONSE_BYTES, _read_capped
from alerting.events import build_event, encode_event
from alerting.signing import verify
from core.errors import BadInput

SECRET = "whsec_0123456789"
FULL_VALUE = "john.smith@acme-bank.example"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            sig = self.headers.get("X-Leaksentinel-Signature", "")
            receiver.requests.append(
                Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    verify(SECRET, body, sig),
                )
            )
            if self.path == "/slow":
                time.sleep(1.5)
            status = {"/ok": 200, "/accepted": 202, "/fail": 500, "/unavailable": 503, "/bad": 400,
                      "/gone": 410, "/busy": 429, "/timeout": 408, "/redirect": 302, "/big": 200,
                      "/slow": 200}[self.path]  # fmt: skip
            payload = (
                b"x" * (1024 * 1024)
                if self.path == "/big"
                else b"receiver says no\r\n\x1b[31m" * (status >= 400)
            )
            self.send_response(status)
            if status == 302:
                self.send_header("Location", receiver.url("/ok"))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client stops reading at its cap
                self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(rec))
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


def make_event() -> dict[str, Any]:
    alert = {
        "id": 7,
        "tenant": "acme-bank",
        "severity": "high",
        "status": "new",
        "kinds": ["email"],
        "records": 2,
        "new_records": 2,
        "url": "http://paste.example/abc",
        "source": "pastebin",
        "first_seen": "2024-05-01T10:00:00+00:00",
        "sightings": ["http://paste.example/abc"],
        "findings": [{"kind": "email", "masked": "j***@a***.example", "value": FULL_VALUE}],
    }
    return build_event(alert, event_id="alert-7-sub-1")


def channel(url: str, **kw: Any) -> WebhookChannel:
    return WebhookChannel(url, SECRET, allow_private=True, **kw)


def test_delivers_signed_event_with_contract_headers(receiver: Receiver) -> None:
    event = make_event()
    result = channel(receiver.url("/ok")).send(event, event_id="alert-7-sub-1")
    assert result == DeliveryResult(ok=True, status=200, error=None, retryable=False)
    [req] = receiver.requests
    assert req.signature_ok, "the receiver's verify() must accept the signature"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-leaksentinel-event-id"] == "alert-7-sub-1"
    assert req.headers["user-agent"] == "leaksentinel/0.1"
    assert req.body == encode_event(event)
    sent = json.loads(req.body)
    assert sent["alert"]["id"] == 7 and sent["type"] == "alert.created"
    assert FULL_VALUE.encode() not in req.body


def test_event_id_is_stable_across_retries_and_each_attempt_is_freshly_signed(receiver: Receiver) -> None:
    ch = channel(receiver.url("/fail"))
    event = make_event()
    for _ in range(2):
        assert ch.send(event, event_id="alert-7-sub-1").retryable
    assert [r.headers["x-leaksentinel-event-id"] for r in receiver.requests] == ["alert-7-sub-1"] * 2
    assert all(r.signature_ok for r in receiver.requests)


@pytest.mark.parametrize(
    ("path", "status", "ok", "retryable"),
    [
        ("/accepted", 202, True, False),
        ("/fail", 500, False, True),
        ("/unavailable", 503, False, True),
        ("/busy", 429, False, True),
        ("/timeout", 408, False, True),
        ("/bad", 400, False, False),
        ("/gone", 410, False, False),
        ("/redirect", 302, False, False),
    ],
)
def test_status_classification(receiver: Receiver, path: str, status: int, ok: bool, retryable: bool) -> None:
    result = channel(receiver.url(path)).send(make_event(), event_id="e")
    assert (result.ok, result.status, result.retryable) == (ok, status, retryable)
    if not ok:
        assert result.error and result.error.startswith(f"HTTP {status}")
        assert "\r" not in result.error and "\x1b" not in result.error


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    result = channel(receiver.url("/redirect")).send(make_event(), event_id="e")
    assert result.status == 302 and "not followed" in (result.error or "")
    assert [r.path for r in receiver.requests] == ["/redirect"]


def test_large_response_is_capped_and_still_ok(receiver: Receiver) -> None:
    assert channel(receiver.url("/big")).send(make_event(), event_id="e").ok


def test_response_reading_stops_at_the_cap() -> None:
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(1000):
            pulled.append(i)
            yield b"x" * 1024

    response = httpx.Response(200, stream=httpx.ByteStream(b""))
    response.stream = _Chunks(chunks())
    assert len(_read_capped(response, deadline=time.monotonic() + 10)) == MAX_RESPONSE_BYTES
    assert len(pulled) == MAX_RESPONSE_BYTES // 1024


class _Chunks(httpx.SyncByteStream):
    def __init__(self, it: Iterator[bytes]) -> None:
        self.it = it

    def __iter__(self) -> Iterator[bytes]:
        return self.it


def test_timeout_is_retryable(receiver: Receiver) -> None:
    started = time.monotonic()
    result = channel(receiver.url("/slow"), timeout_s=0.3).send(make_event(), event_id="e")
    assert not result.ok and result.retryable and result.status is None
    assert "timed out" in (result.error or "")
    assert time.monotonic() - started < 1.4


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = channel(f"http://127.0.0.1:{port}/hook").send(make_event(), event_id="e")
    assert not result.ok and result.retryable and result.status is None
    assert "ConnectError" in (result.error or "")


def test_loopback_target_is_refused_before_connecting_when_private_not_allowed(receiver: Receiver) -> None:
    for url in (
        receiver.url("/ok"),
        f"http://localhost:{receiver.port}/ok",
        f"http://[::ffff:127.0.0.1]:{receiver.port}/ok",
    ):
        result = WebhookChannel(url, SECRET, allow_private=False).send(make_event(), event_id="e")
        assert not result.ok and not result.retryable
        assert "non-public" in (result.error or "")
    assert receiver.requests == []


def test_construction_errors() -> None:
    with pytest.raises(BadInput):
        WebhookChannel("http://127.0.0.1/hook", "")
    with pytest.raises(BadInput):
        WebhookChannel("file:///etc/passwd", SECRET)
    assert SECRET not in repr(channel("http://127.0.0.1/hook"))


def test_build_channel(receiver: Receiver) -> None:
    ch = build_channel("webhook", receiver.url("/ok"), SECRET, allow_private=True, smtp=None)
    assert isinstance(ch, Channel) and isinstance(ch, WebhookChannel)
    assert ch.send(make_event(), event_id="e").ok
    with pytest.raises(BadInput):
        build_channel("webhook", receiver.url("/ok"), None, allow_private=True, smtp=None)
    with pytest.raises(BadInput, match="unknown channel kind"):
        build_channel("carrier-pigeon", "x", None, allow_private=True, smtp=None)
    with pytest.raises(BadInput):
        build_channel("email", "soc@acme.example", None, allow_private=True, smtp=None)
