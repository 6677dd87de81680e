"""Rate limits: a token bucket per API key (and per client address for the public tip line and for
failed authentications).

Why in process: one service process answers the API; a fleet behind a load balancer should put the
same limits at the balancer (documented for operators).
"""

import threading
import time

__all__ = ["AUTH_FAILURE_BURST", "AUTH_FAILURE_RATE", "RateLimiter"]

#: Failed authentications allowed per client address: a burst, then one every 6 s (10 a minute).
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_RATE = 1 / 6


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def exhausted(self, key: str, cost: float = 1.0) -> bool:
        """Whether `key` has less than `cost` left right now (nothing is spent)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            return min(float(self.burst), tokens + (now - last) * self.rate) < cost

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                return False
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory under a flood of distinct keys
            self._buckets[key] = (tokens - cost, now)
            return True
