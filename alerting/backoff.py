"""Retry delays for deliveries: exponential with full jitter, always below the visibility timeout.

Why the cap: with Redis as broker, a task whose ETA lies beyond the visibility timeout is handed out
again and again; every delay here stays under half of it.
"""

from __future__ import annotations

import random

__all__ = ["retry_delay"]


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    visibility_timeout_s: float,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1-based)."""
    cap = min(max_s, visibility_timeout_s / 2)
    ceiling = min(cap, base_s * (2 ** max(0, attempt - 1)))
    r = rng or random
    return max(0.5, min(cap, ceiling / 2 + r.uniform(0, ceiling / 2)))
