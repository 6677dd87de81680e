"""The webhook receiver records deliveries, fails on demand and lets tests wait without sleeping."""

from __future__ import annotations

import threading
import time

import httpx

from leaksentinel.sim import WebhookReceiver


def post(url: str, body: bytes = b'{"id": 1}', **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=5)


def test_records_posts():
    with WebhookReceiver() as hook:
        assert hook.url.startswith("http://127.0.0.1:") and hook.url.endswith("/hook")
        before = time.time()
        r = post(hook.url, b'{"id": 7}', **{"X-Leaksentinel-Event-Id": "ev-1"})
        assert r.status_code == 200 and r.json() == {"ok": True}
        post(hook.base_url + "/other")
        assert len(hook.received) == 2
        first = hook.received[0]
        assert first.path == "/hook"
        assert first.body == b'{"id": 7}' and first.json() == {"id": 7}
        assert first.headers["x-leaksentinel-event-id"] == "ev-1"
        assert first.headers["content-type"] == "application/json"
        assert before <= first.at <= time.time()
        assert hook.received[1].path == "/other"


def test_fail_next_then_recover():
    with WebhookReceiver() as hook:
        hook.fail_next(2, status=503)
        statuses = [post(hook.url).status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        assert [r.status for r in hook.received] == [503, 503, 200]
        assert len(hook.delivered) == 1
        hook.fail_next(1)
        assert post(hook.url).status_code == 500


def test_wait_for():
    with WebhookReceiver() as hook:
        assert hook.wait_for(0, timeout=0.01)
        assert not hook.wait_for(1, timeout=0.05)

        def later() -> None:
            time.sleep(0.1)
            for _ in range(3):
                post(hook.url)

        threading.Thread(target=later).start()
        started = time.monotonic()
        assert hook.wait_for(3, timeout=5)
        assert time.monotonic() - started < 4
        hook.fail_next(1)
        post(hook.url)
        assert hook.wait_for(5, timeout=0.2) is False
        assert hook.wait_for(4, timeout=0.2, ok_only=True) is False
        post(hook.url)
        assert hook.wait_for(4, timeout=1, ok_only=True)


def test_stop_is_idempotent_and_closes():
    hook = WebhookReceiver()
    url = hook.start()
    assert hook.start() == url
    hook.stop()
    hook.stop()
    try:
        post(url)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("receiver still answering after stop()")
