"""Crawl schedules: ``every 5m`` intervals or cron expressions, and when each source is next due.

Why stored as text on the source row: ``source set`` changes it in the database and the running
scheduler reads it on its next tick, so a change takes effect without a restart.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

from croniter import croniter

from core.errors import BadInput

__all__ = ["describe_schedule", "jitter_for", "next_due", "parse_every", "schedule_from_options"]

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> int:
    """'5m' -> 300 seconds; at least 10 seconds."""
    match = _EVERY.match(text or "")
    if not match:
        raise BadInput(f"bad interval {text!r}: use a number with s, m, h or d, such as 30s, 5m, 1h")
    seconds = int(float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()])
    if seconds < 10:
        raise BadInput(f"interval {text!r} is shorter than 10 seconds")
    return seconds


def schedule_from_options(every: str | None, cron: str | None) -> str | None:
    if every and cron:
        raise BadInput("give either --every or --cron, not both")
    if every:
        return f"every {parse_every(every)}"
    if cron:
        if not croniter.is_valid(cron):
            raise BadInput(f"bad cron expression {cron!r}")
        return f"cron {cron}"
    return None


def jitter_for(source_id: int, schedule: str | None, max_s: float = 30.0) -> float:
    """A stable per-source delay (up to 10% of the interval, at most ``max_s``): sources on the same
    schedule do not all fire in the same second, and the delay does not change from tick to tick."""
    if not schedule or not schedule.startswith("every "):
        return 0.0
    window = min(max_s, int(schedule.split()[1]) * 0.1)
    return random.Random(source_id).uniform(0, window)


def next_due(
    schedule: str | None, last_run: datetime | None, now: datetime, *, jitter_s: float = 0.0
) -> datetime | None:
    """When a source with this schedule is next due; None if it has none.

    A never-run ``every`` source is due at once (``now``): an operator who adds a source expects a crawl,
    and a due time computed from the clock alone would move with it and never arrive. Jitter spreads
    only later runs. A never-run ``cron`` source waits for the expression's next time.
    """
    if not schedule:
        return None
    kind, _, expr = schedule.partition(" ")
    jitter = timedelta(seconds=jitter_s)
    if kind == "every":
        if last_run is None:
            return now
        return last_run + timedelta(seconds=int(expr)) + jitter
    if kind == "cron":
        base = last_run or (now - timedelta(seconds=1))
        return croniter(expr, base).get_next(datetime) + jitter
    return None


def describe_schedule(schedule: str | None) -> str:
    """The stored schedule as people write it: ``every 120`` -> ``every 2m``, ``cron */5 * * * *`` as is."""
    if not schedule:
        return ""
    kind, _, expr = schedule.partition(" ")
    if kind != "every" or not expr.isdigit():
        return schedule
    seconds = int(expr)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"
