"""Slack-compatible channel against a real incoming-webhook receiver on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerting.channels.base import Channel, DeliveryResult
from alerting.channels.slack import SlackChannel, defang, render_message
from alerting.digest import build_digest
from alerting.events import build_event
from core.errors import BadInput

FULL_VALUE = "john.smith@acme-bank.example"
TOKEN = "T000/B000/XXXXSECRETXXXX"
HOSTILE_URL = "https://paste.example/dump?next=http://evil.example/<!channel>|click&x=`code`"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/services/{TOKEN}{path}"


STATUSES = {"/ok": 200, "/fail": 500, "/unavailable": 503, "/bad": 400, "/forbidden": 403, "/gone": 410,
            "/busy": 429, "/timeout": 408, "/early": 425, "/redirect": 302, "/slow": 200}  # fmt: skip


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            path = "/" + self.path.rsplit("/", 1)[-1]
            receiver.requests.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
            if path == "/slow":
                time.sleep(1.5)
            status = STATUSES[path]
            payload = b"ok" if status == 200 else b"invalid_payload\r\n\x1b[31m"
            self.send_response(status)
            if status == 302:
                self.send_header("Location", receiver.url("/ok"))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):
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


def make_event(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": 7,
        "tenant": "acme-bank",
        "severity": "high",
        "status": "new",
        "kinds": ["record"],
        "records": 412,
        "new_records": 37,
        "url": "https://paste.example/abc",
        "source": "pastebin",
        "first_seen": "2026-10-02T10:00:00+00:00",
        "sightings": ["https://paste.example/abc"],
        "findings": [
            {
                "kind": "record",
                "record_key": "cust-00001",
                "masked": "j***@acme-bank.example",
                "value": FULL_VALUE,
            }
        ],
    }
    alert.update(overrides)
    return build_event(alert, event_id="alert-7-sub-3", console_url="https://console.example/alerts/7")


def channel(url: str, **kw: Any) -> SlackChannel:
    return SlackChannel(url, allow_private=True, **kw)


def _texts(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(type, text) of every text object in the message, the fallback first."""
    out = [("fallback", message["text"])]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in {"plain_text", "mrkdwn"} and "text" in node:
                out.append((node["type"], node["text"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return out


def test_posts_an_incoming_webhook_message(receiver: Receiver) -> None:
    result = channel(receiver.url("/ok")).send(make_event(), event_id="alert-7-sub-3")
    assert result == DeliveryResult(ok=True, status=200, error=None, retryable=False)
    [req] = receiver.requests
    assert req.headers["content-type"].startswith("application/json")
    assert req.headers["x-leaksentinel-event-id"] == "alert-7-sub-3"
    msg = req.json
    assert set(msg) == {"text", "blocks"} and msg["blocks"][0]["type"] == "header"
    everything = " ".join(text for _, text in _texts(msg))
    for shown in ("HIGH", "acme-bank", "412", "37", "pastebin", "hxxps[://]paste[.]example/abc"):
        assert shown in everything
    # the console is the only link, and it is a button
    buttons = [e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["url"] for b in buttons] == ["https://console.example/alerts/7"]
    # chat carries no record keys and no values, masked or full
    assert FULL_VALUE.encode() not in req.body
    assert b"cust-00001" not in req.body and b"j***@" not in req.body


def test_posting_url_is_never_a_link(receiver: Receiver) -> None:
    assert channel(receiver.url("/ok")).send(make_event(url=HOSTILE_URL), event_id="e").ok
    msg = receiver.requests[0].json
    body = receiver.requests[0].body.decode()
    assert "https://paste.example" not in body and "http://evil" not in body
    assert "evil.example" not in body  # bare domains are linked by chat clients too
    texts = _texts(msg)
    posting_texts = [(kind, text) for kind, text in texts if "paste[.]example" in text]
    assert posting_texts and all(kind in {"plain_text", "fallback"} for kind, _ in posting_texts)
    # in the fallback (markdown readers) it sits in a code span that it cannot close
    fallback = msg["text"]
    start = fallback.index("`hxxps")
    assert "`" not in fallback[start + 1 : fallback.index("`", start + 1)]
    assert "<!channel>" not in fallback


def test_mrkdwn_is_escaped() -> None:
    msg = render_message(make_event(source="<!channel> <https://evil.example|bank login>", tenant="a&b"))
    for kind, text in _texts(msg):
        if kind in {"mrkdwn", "fallback"}:
            assert "<!channel>" not in text and "<https://evil" not in text
    assert any("&lt;!channel&gt;" in text for kind, text in _texts(msg) if kind == "mrkdwn")


def test_header_respects_slack_limits() -> None:
    msg = render_message(make_event(source="s" * 500))
    assert len(msg["blocks"][0]["text"]["text"]) <= 150
    assert len(defang("https://x.example/" + "a" * 1000)) <= 300


def test_defang() -> None:
    assert defang("https://paste.example/a.txt") == "hxxps[://]paste[.]example/a[.]txt"
    assert defang("HTTP://x.y") == "hxxp[://]x[.]y"
    assert defang("line\nbreak`tick") == "line break%60tick"


def test_digest_message(receiver: Receiver) -> None:
    window = (dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(2026, 10, 2, tzinfo=dt.UTC))
    alerts = [
        {
            "id": i,
            "severity": "medium",
            "records": 3,
            "new_records": 1,
            "url": HOSTILE_URL,
            "source": "pastebin",
        }
        for i in range(25)
    ]
    digest = build_digest("acme-bank", alerts, "daily", window, console_url="https://console.example/alerts")
    assert channel(receiver.url("/ok")).send(digest, event_id=digest["event_id"]).ok
    msg = receiver.requests[0].json
    body = receiver.requests[0].body.decode()
    assert "daily digest for acme-bank: 25 alerts" in msg["text"]
    assert "evil.example" not in body and "https://paste" not in body
    assert len(msg["blocks"]) <= 50
    assert any("and 5 more" in text for _, text in _texts(msg))


@pytest.mark.parametrize(
    ("path", "status", "ok", "retryable"),
    [
        ("/fail", 500, False, True),
        ("/unavailable", 503, False, True),
        ("/busy", 429, False, True),
        ("/timeout", 408, False, True),
        ("/early", 425, False, True),
        ("/bad", 400, False, False),
        ("/forbidden", 403, False, False),
        ("/gone", 410, False, False),
        ("/redirect", 302, False, False),
    ],
)
def test_status_classification(receiver: Receiver, path: str, status: int, ok: bool, retryable: bool) -> None:
    result = channel(receiver.url(path)).send(make_event(), event_id="e")
    assert (result.ok, result.status, result.retryable) == (ok, status, retryable)
    assert result.error and result.error.startswith(f"HTTP {status}")
    assert "\r" not in result.error and "\x1b" not in result.error
    assert [r.path for r in receiver.requests] == [path]  # redirects are not followed


def test_timeout_is_retryable(receiver: Receiver) -> None:
    started = time.monotonic()
    result = channel(receiver.url("/slow"), timeout_s=0.3).send(make_event(), event_id="e")
    assert not result.ok and result.retryable and "timed out" in (result.error or "")
    assert time.monotonic() - started < 1.4


def test_connection_refused_is_retryable_and_does_not_leak_the_token() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = channel(f"http://127.0.0.1:{port}/services/{TOKEN}").send(make_event(), event_id="e")
    assert not result.ok and result.retryable and result.status is None
    assert "ConnectError" in (result.error or "") and TOKEN not in (result.error or "")


def test_loopback_is_refused_when_private_targets_are_not_allowed(receiver: Receiver) -> None:
    for url in (receiver.url("/ok"), f"http://localhost:{receiver.port}/services/{TOKEN}/ok"):
        result = SlackChannel(url, allow_private=False).send(make_event(), event_id="e")
        assert not result.ok and not result.retryable
        assert "non-public" in (result.error or "") and TOKEN not in (result.error or "")
    assert receiver.requests == []


def test_construction_and_repr() -> None:
    ch = channel(f"https://hooks.slack.example/services/{TOKEN}")
    assert isinstance(ch, Channel)
    assert TOKEN not in repr(ch) and "hooks.slack.example" in repr(ch)
    with pytest.raises(BadInput):
        SlackChannel("file:///etc/passwd", allow_private=True)
    with pytest.raises(BadInput):
        SlackChannel("javascript:alert(1)", allow_private=True)
