"""Process figures for Prometheus, counted where the work happens (delivery, detection, tasks, scheduler).

Why in core: the pipelines, the alerting tasks and the scheduler count here without depending on the
service that exports the figures (:mod:`leaksentinel.telemetry`). prometheus_client is imported on first
use, so a role can name its children's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``) before any of
them chooses between memory and files. Counting never raises: a metric must never cost a delivery or a scan.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LATENCY_BUCKETS",
    "MULTIPROC_ENV",
    "count_delivery",
    "count_scan",
    "count_scheduled_crawl",
    "instrument_celery",
    "timed",
]

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Stored → delivered, in seconds: the target is under 2 s; the dead-letter window is about 30 minutes.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)


@dataclass(frozen=True)
class _Metrics:
    deliveries: Any
    delivery_latency: Any
    tasks: Any
    scan_bytes: Any
    scan_seconds: Any
    scanned_postings: Any
    scheduled_crawls: Any


@functools.cache
def _metrics() -> _Metrics:
    """The process's metric objects, made on first use (after a role has named its multiprocess directory)."""
    from prometheus_client import Counter, Histogram

    return _Metrics(
        deliveries=Counter(
            "leaksentinel_deliveries",
            "Delivery attempts by channel and outcome (sent, retry, dead).",
            ["channel", "outcome"],
        ),
        delivery_latency=Histogram(
            "leaksentinel_delivery_latency_seconds",
            "From the alert event stored (outbox row written with the posting) to its delivery.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
        ),
        tasks=Counter("leaksentinel_tasks", "Celery tasks run, by task and final state.", ["task", "state"]),
        scan_bytes=Counter("leaksentinel_scan_bytes", "Bytes of posting text run through detection."),
        scan_seconds=Counter("leaksentinel_scan_seconds", "Seconds spent in detection."),
        scanned_postings=Counter("leaksentinel_scanned_postings", "Postings run through detection."),
        scheduled_crawls=Counter(
            "leaksentinel_scheduled_crawls", "Crawls fired by this scheduler (the leader).", ["source"]
        ),
    )


def count_delivery(channel: str, outcome: str, latency_s: float | None = None) -> None:
    """One delivery attempt's outcome; ``latency_s`` (stored → delivered) when it was sent."""
    try:
        m = _metrics()
        m.deliveries.labels(channel=channel, outcome=outcome).inc()
        if latency_s is not None:
            m.delivery_latency.labels(channel=channel).observe(max(0.0, latency_s))
    except Exception as exc:  # metrics must never cost a delivery
        log.debug("delivery metric not recorded: %s", exc)


def count_scan(nbytes: int, seconds: float) -> None:
    """One posting run through detection: bytes of text and seconds taken (scan MB/s is their ratio)."""
    try:
        m = _metrics()
        m.scan_bytes.inc(max(0, nbytes))
        m.scan_seconds.inc(max(0.0, seconds))
        m.scanned_postings.inc()
    except Exception as exc:
        log.debug("scan metric not recorded: %s", exc)


def count_scheduled_crawl(source: str) -> None:
    try:
        _metrics().scheduled_crawls.labels(source=source).inc()
    except Exception as exc:
        log.debug("scheduler metric not recorded: %s", exc)


_celery_connected = False


def _on_task_postrun(sender: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(sender, "name", None) or "unknown"
    try:
        _metrics().tasks.labels(task=str(name)[:100], state=str(state or "UNKNOWN")[:16]).inc()
    except Exception as exc:
        log.debug("task metric not recorded: %s", exc)


def instrument_celery() -> None:
    """Count every task a worker of this process runs (task names are those registered: bounded)."""
    global _celery_connected
    if _celery_connected:
        return
    from celery.signals import task_postrun

    task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="leaksentinel-telemetry-tasks")
    _celery_connected = True


def timed() -> Callable[[], float]:
    """A stopwatch: ``elapsed = timed(); ...; seconds = elapsed()``."""
    start = time.perf_counter()
    return lambda: time.perf_counter() - start
