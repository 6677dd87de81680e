"""Webhook signatures: ``X-Leaksentinel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``f"{t}."`` followed by the raw request body, so a receiver knows the body came from
someone holding the subscription secret *and* when it was signed: a captured delivery cannot be replayed
once it is older than the tolerance window (the event id in ``X-Leaksentinel-Event-Id`` drops repeats
inside it).

``verify`` is the receiver snippet the docs quote: standard library only, copy it as it is::

    ok = verify(secret, request_body_bytes, request.headers["X-Leaksentinel-Signature"])
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["sign", "verify"]


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``, signed now unless ``timestamp`` is given."""
    if not secret:
        # An empty key makes the MAC computable by anyone: refuse rather than send a false assurance.
        raise ValueError("a webhook secret is required to sign")
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: int | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    Never raises on a malformed header; compares in constant time; accepts several ``v1=`` entries.
    """
    if not secret or not isinstance(header, str):
        return False
    t, sigs = "", []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            t = value
        elif key == "v1":
            sigs.append(value)
    if not (t.isascii() and t.isdigit() and len(t) <= 12) or not sigs:
        return False
    now = int(time.time()) if now is None else now
    if abs(now - int(t)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest().encode()
    return any(hmac.compare_digest(expected, s.encode("utf-8", "replace")) for s in sigs)
