"""What every channel promises: one ``send`` that never raises for a delivery problem.

Why a result object rather than exceptions: the notify task decides between "done", "retry later" and
"dead-letter" from ``ok`` and ``retryable`` alone, whatever the channel; a channel must classify its own
failures because only it knows which ones a retry can fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Channel", "DeliveryResult"]


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one delivery attempt.

    ``status`` is the HTTP status (webhook) or SMTP reply code (email) when the peer answered;
    ``error`` is a one-line reason for the dead-letter list, None on success.
    """

    ok: bool
    status: int | None
    error: str | None
    retryable: bool

    @classmethod
    def success(cls, status: int | None) -> DeliveryResult:
        return cls(ok=True, status=status, error=None, retryable=False)

    @classmethod
    def failure(cls, error: str, *, retryable: bool, status: int | None = None) -> DeliveryResult:
        return cls(ok=False, status=status, error=error, retryable=retryable)


@runtime_checkable
class Channel(Protocol):
    """A way to hand an alert event to a subscriber."""

    def send(self, event: Mapping[str, Any], *, event_id: str) -> DeliveryResult:
        """Deliver ``event`` once; ``event_id`` is the idempotency key the receiver may dedupe on."""
        ...
