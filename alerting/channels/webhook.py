"""Webhook channel: a signed ``POST`` of the JSON alert event.

Why these rules: the receiver is someone else's server, so the channel trusts nothing it answers.
Redirects are not followed (a 3xx could point into a private network), at most 64 KiB of the response is
read and never decompressed, and private targets are refused at connect time unless allowed (see
``core.netguard``). Retry classification follows HTTP semantics: 408/425/429/5xx and network failures
may succeed later; any other answer will not.

Usage::

    result = WebhookChannel(url, secret).send(event, event_id=event["event_id"])
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from alerting.channels.base import DeliveryResult
from alerting.events import encode_event
from alerting.signing import sign
from core.errors import BadInput
from core.netguard import UnsafeTarget, check_url, guarded_transport

__all__ = ["MAX_RESPONSE_BYTES", "RETRYABLE_STATUSES", "WebhookChannel"]

MAX_RESPONSE_BYTES = 64 * 1024
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class WebhookChannel:
    """POSTs events to ``url``, signed with ``secret`` (``X-Leaksentinel-Signature``)."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        allow_private: bool = False,
        user_agent: str = "leaksentinel/0.1",
    ) -> None:
        if not secret:
            raise BadInput("a webhook needs a signing secret")
        # Syntax only here (no DNS at construction); the address check happens at connect time.
        self.url = check_url(url, allow_private=True)
        self.secret = secret
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.user_agent = user_agent

    def __repr__(self) -> str:  # never show the secret in logs
        return f"WebhookChannel({self.url!r}, allow_private={self.allow_private})"

    def send(self, event: Mapping[str, Any], *, event_id: str) -> DeliveryResult:
        """One POST attempt; never raises for a network or receiver problem."""
        body = encode_event(event)
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": self.user_agent,
            "X-Leaksentinel-Event-Id": event_id,
            "X-Leaksentinel-Signature": sign(self.secret, body),
        }
        return post_json(self.url, body, headers, timeout_s=self.timeout_s, allow_private=self.allow_private)


def post_json(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float, allow_private: bool
) -> DeliveryResult:
    """One POST through the SSRF guard, no redirects, the answer read capped; never raises for a network
    or receiver problem (shared by the webhook and chat channels)."""
    deadline = time.monotonic() + timeout_s
    try:
        with (
            httpx.Client(
                transport=guarded_transport(allow_private),
                timeout=timeout_s,
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream("POST", url, content=body, headers=dict(headers)) as response,
        ):
            snippet = _read_capped(response, deadline)
            status = response.status_code
    except UnsafeTarget as exc:
        return DeliveryResult.failure(str(exc), retryable=False)
    except httpx.TimeoutException as exc:
        return DeliveryResult.failure(f"timed out: {type(exc).__name__}", retryable=True)
    except httpx.TransportError as exc:
        return DeliveryResult.failure(f"{type(exc).__name__}: {exc}", retryable=True)
    except httpx.HTTPError as exc:
        return DeliveryResult.failure(f"{type(exc).__name__}: {exc}", retryable=False)
    return _classify(status, snippet)


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    """At most ``MAX_RESPONSE_BYTES`` of the raw body, stopping at the deadline (a trickling peer)."""
    buf = bytearray()
    for chunk in response.iter_raw():
        buf += chunk
        if len(buf) >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
            break
    return bytes(buf[:MAX_RESPONSE_BYTES])


def _classify(status: int, snippet: bytes) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult.success(status)
    text = " ".join(snippet[:200].decode("utf-8", "replace").split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)  # it goes into logs
    reason = f"HTTP {status}" + (f": {text}" if text else "")
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    retryable = status in RETRYABLE_STATUSES or status >= 500
    return DeliveryResult.failure(reason, retryable=retryable, status=status)
