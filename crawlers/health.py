"""Crawler health: parsers rot silently, so every run is judged and a source that goes wrong says so.

Why these three rules: a run that fetched pages but read no posting where earlier runs read some is
the classic silent breakage (the site changed its markup); repeated failures mean it is unreachable
or blocking us; and a source that has not succeeded for several of its intervals is stale, whatever
the reason (scheduler stopped, worker stuck).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["FAILURES_BEFORE_UNHEALTHY", "STALE_INTERVALS", "Verdict", "assess_run", "is_stale"]

FAILURES_BEFORE_UNHEALTHY = 3
STALE_INTERVALS = 3


@dataclass(frozen=True)
class Verdict:
    health: str  # healthy, unhealthy
    reason: str | None
    failures_in_row: int


def assess_run(
    summary: dict[str, Any],
    *,
    failed: bool,
    failures_in_row: int,
    ever_produced: bool,
    failures_before_unhealthy: int = FAILURES_BEFORE_UNHEALTHY,
) -> Verdict:
    """Judge one finished run, given the source's record before it."""
    if failed:
        count = failures_in_row + 1
        if count >= max(1, failures_before_unhealthy):
            return Verdict(
                "unhealthy",
                f"failed {count} runs in a row: {summary.get('error') or 'no page fetched'}",
                count,
            )
        return Verdict("healthy", None, count)
    fetched = int(summary.get("fetched", 0))
    postings = int(summary.get("postings", 0))
    pages_beyond_listing = fetched - 1 - int(summary.get("robots", 0))
    if ever_produced and postings == 0 and pages_beyond_listing > 0:
        return Verdict(
            "unhealthy", f"fetched {fetched} pages but read no posting (has the markup changed?)", 0
        )
    return Verdict("healthy", None, 0)


def interval_seconds(schedule: str | None) -> int | None:
    if not schedule:
        return None
    kind, _, expr = schedule.partition(" ")
    if kind == "every":
        return int(expr)
    if kind == "cron":
        from croniter import croniter

        it = croniter(expr)
        first = it.get_next(float)
        return int(it.get_next(float) - first)
    return None


def is_stale(
    schedule: str | None, enabled: bool, last_success: datetime | None, created_at: datetime, now: datetime
) -> bool:
    """Not succeeded within STALE_INTERVALS of its interval (paused sources are never stale)."""
    interval = interval_seconds(schedule)
    if not enabled or interval is None:
        return False
    since = last_success or created_at
    return now - since > timedelta(seconds=STALE_INTERVALS * interval)
