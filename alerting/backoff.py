"""Retry delays for every outbox (alert deliveries and operator events): exponential with full jitter.

Modelled on Celery's ``celery.utils.time.get_exponential_backoff_interval(factor, retries, maximum,
full_jitter=True)``: the ceiling doubles with each attempt up to a maximum, and the delay is drawn
uniformly between zero and that ceiling ("full jitter"), so receivers that come back are not hit by
every sender at the same instant. (The previous version drew from the upper half only, "equal jitter".)

Why the cap: with Redis as broker, a task whose ETA lies beyond the visibility timeout is handed out
again and again; every delay here stays under half of it.
"""

from __future__ import annotations

import random

__all__ = ["backoff_ceiling", "retry_delay"]


def backoff_ceiling(attempt: int, *, base_s: float, max_s: float, visibility_timeout_s: float) -> float:
    """The largest delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped."""
    cap = min(max_s, visibility_timeout_s / 2)
    exponent = min(max(0, attempt - 1), 62)  # 2**62 already exceeds every cap; no float overflow
    return max(0.0, min(cap, base_s * (2**exponent)))


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    visibility_timeout_s: float,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in ``[0, backoff_ceiling(attempt)]``."""
    ceiling = backoff_ceiling(attempt, base_s=base_s, max_s=max_s, visibility_timeout_s=visibility_timeout_s)
    return (rng or random).uniform(0.0, ceiling)
