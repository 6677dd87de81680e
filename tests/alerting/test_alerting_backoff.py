"""The documented dead-letter window holds with the default settings and full-jitter backoff."""

from __future__ import annotations

import random

from alerting.backoff import backoff_ceiling, retry_delay
from core.settings import Settings


def _window(settings: Settings, rng: random.Random) -> float:
    """Seconds from the first failed attempt to the dead letter: the sum of the delays between attempts."""
    return sum(
        retry_delay(
            attempt,
            base_s=settings.delivery_backoff_base_s,
            max_s=settings.delivery_backoff_max_s,
            visibility_timeout_s=settings.broker_visibility_timeout_s,
            rng=rng,
        )
        for attempt in range(1, settings.delivery_max_attempts)
    )


def test_default_dead_letter_window_is_about_27_minutes_and_rarely_under_ten() -> None:
    settings = Settings()
    rng = random.Random(1234)
    windows = [_window(settings, rng) for _ in range(20_000)]
    mean_min = sum(windows) / len(windows) / 60
    assert 24 <= mean_min <= 30, mean_min  # docs/operators.md: about 27 minutes on average
    under_ten = sum(w < 600 for w in windows) / len(windows)
    assert under_ten < 0.001, under_ten  # "under 10 minutes about once in 10,000"


def test_every_delay_stays_under_half_the_visibility_timeout() -> None:
    for attempt in range(1, 40):
        ceiling = backoff_ceiling(attempt, base_s=2, max_s=300, visibility_timeout_s=200)
        assert ceiling <= 100
        assert 0 <= retry_delay(attempt, base_s=2, max_s=300, visibility_timeout_s=200) <= ceiling
