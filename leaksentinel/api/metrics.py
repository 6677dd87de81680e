"""``/metrics`` in Prometheus text format, computed from the database on each scrape.

Why from the database: every process (crawl jobs, workers) writes its results there, so one scrape
of the service shows the whole embedded deployment without a metrics push gateway.
"""

from datetime import datetime

from sqlalchemy import func, select

from core.db import Database
from core.models import Alert, CrawlJob, Delivery, Posting, Source, utcnow
from crawlers.health import is_stale

__all__ = ["render_metrics"]


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(db: Database, queue_depths: dict[str, int] | None = None) -> str:
    now: datetime = utcnow()
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    with db.session() as sess:
        sources = sess.scalars(select(Source).where(Source.kind.not_in(("local", "tips")))).all()
        jobs = dict(sess.execute(select(CrawlJob.source_id, func.count()).group_by(CrawlJob.source_id)).all())
        failed = dict(
            sess.execute(
                select(CrawlJob.source_id, func.count())
                .where(CrawlJob.status == "failed")
                .group_by(CrawlJob.source_id)
            ).all()
        )
        postings = dict(
            sess.execute(select(Posting.source_id, func.count()).group_by(Posting.source_id)).all()
        )
        deliveries = dict(sess.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        attempts = int(sess.scalar(select(func.coalesce(func.sum(Delivery.attempts), 0))) or 0)
        alerts = dict(sess.execute(select(Alert.status, func.count()).group_by(Alert.status)).all())
        latencies = [
            (sent - created).total_seconds() if sent is not None else 0.0
            for created, sent in sess.execute(
                select(Delivery.created_at, Delivery.sent_at)
                .where(Delivery.sent_at.is_not(None))
                .order_by(Delivery.id.desc())
                .limit(1000)
            ).all()
        ]
    metric("leaksentinel_crawl_runs_total", "counter", "Crawl runs per source.")
    for s in sources:
        out.append(_line("leaksentinel_crawl_runs_total", jobs.get(s.id, 0), {"source": s.name}))
    metric("leaksentinel_crawl_failures_total", "counter", "Failed crawl runs per source.")
    for s in sources:
        out.append(_line("leaksentinel_crawl_failures_total", failed.get(s.id, 0), {"source": s.name}))
    metric("leaksentinel_postings_total", "counter", "Postings stored per source.")
    for s in sources:
        out.append(_line("leaksentinel_postings_total", postings.get(s.id, 0), {"source": s.name}))
    metric("leaksentinel_source_staleness_seconds", "gauge", "Seconds since the source last succeeded.")
    for s in sources:
        since = s.last_success or s.created_at
        out.append(
            _line(
                "leaksentinel_source_staleness_seconds",
                round((now - since).total_seconds(), 1),
                {"source": s.name},
            )
        )
    metric("leaksentinel_source_healthy", "gauge", "1 when the source is healthy, 0 when not.")
    for s in sources:
        bad = s.health == "unhealthy" or is_stale(s.schedule, s.enabled, s.last_success, s.created_at, now)
        out.append(_line("leaksentinel_source_healthy", 0 if bad else 1, {"source": s.name}))
    metric("leaksentinel_deliveries", "gauge", "Deliveries by status (dead: the dead-letter list).")
    for status in ("pending", "queued", "sent", "dead"):
        out.append(_line("leaksentinel_deliveries", deliveries.get(status, 0), {"status": status}))
    metric("leaksentinel_delivery_attempts_total", "counter", "Delivery attempts made.")
    out.append(_line("leaksentinel_delivery_attempts_total", attempts))
    metric("leaksentinel_delivery_latency_seconds", "summary", "From alert written to delivered (last 1000).")
    if latencies:
        latencies.sort()
        for q in (0.5, 0.99):
            out.append(
                _line(
                    "leaksentinel_delivery_latency_seconds",
                    round(latencies[int(q * (len(latencies) - 1))], 3),
                    {"quantile": str(q)},
                )
            )
    metric("leaksentinel_alerts", "gauge", "Alerts by status.")
    for status in ("new", "acked", "resolved", "false_positive"):
        out.append(_line("leaksentinel_alerts", alerts.get(status, 0), {"status": status}))
    if queue_depths is not None:
        metric("leaksentinel_queue_depth", "gauge", "Tasks waiting in each broker queue.")
        for queue, depth in sorted(queue_depths.items()):
            out.append(_line("leaksentinel_queue_depth", depth, {"queue": queue}))
    return "\n".join(out) + "\n"
