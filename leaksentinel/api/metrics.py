"""``/metrics`` in Prometheus text format: database figures, broker queue depths and process figures.

Why from the database: every process (crawl jobs, workers) writes its results there, so one scrape of the
service shows the whole deployment's crawls, outbox and alerts without a push gateway. The figures only a
process knows (deliveries by outcome, stored → delivered latency, detection bytes and seconds) come from
this process and, under ``run``, from its worker pools (see :mod:`leaksentinel.telemetry`).
"""

from __future__ import annotations

from core.db import Database
from leaksentinel.telemetry import make_registry, render

__all__ = ["render_metrics"]


def render_metrics(db: Database, queue_depths: dict[str, int] | None = None) -> str:
    return render(make_registry(db=db, queue_depths=queue_depths))
