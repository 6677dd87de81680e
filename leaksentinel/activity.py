"""What ``run`` tells its operator: one log line per crawl finished, alert raised, delivery done or dead,
and source health change.

Why from the database: crawls and deliveries happen in worker processes (on other machines in a fleet),
but each one ends in a row. Following the rows from the service's own process gives one ordered log
that says the same thing whichever process did the work, and costs a few indexed queries a second.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from core.db import Database
from core.models import Alert, CrawlJob, Delivery, OperatorEvent, Source, Subscription, Tenant

__all__ = ["ActivityLog", "JsonFormatter", "configure_logging"]

log = logging.getLogger("leaksentinel.activity")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (``run --log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            body.update(event)
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


def configure_logging(fmt: str) -> None:
    """Root logging for ``run``: people read ``text``, log shippers take ``json``."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "uvicorn.access", "celery", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ActivityLog:
    """Follows crawl jobs, alerts, deliveries and operator events, logging each once as it ends."""

    def __init__(self, db: Database, *, interval_s: float = 1.0) -> None:
        self.db = db
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_job = self._last_alert = self._last_event = 0
        self._last_sent: datetime | None = None
        self._dead_seen: set[int] = set()
        self._jobs_seen: set[int] = set()

    def start(self) -> ActivityLog:
        """Begin after what already happened: a restart does not repeat yesterday's log."""
        with self.db.session() as sess:
            self._last_job = sess.scalar(select(func.max(CrawlJob.id))) or 0
            self._last_alert = sess.scalar(select(func.max(Alert.id))) or 0
            self._last_event = sess.scalar(select(func.max(OperatorEvent.id))) or 0
            self._last_sent = sess.scalar(select(func.max(Delivery.sent_at)))
            self._dead_seen = set(sess.scalars(select(Delivery.id).where(Delivery.status == "dead")))
        self._thread = threading.Thread(target=self._loop, name="leaksentinel-activity", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception as exc:  # a database hiccup must not end the log
                log.warning("activity log: %s", exc)

    def poll(self) -> int:
        """Log what ended since the last poll; returns how many lines were written."""
        lines = 0
        with self.db.session() as sess:
            lines += self._crawls(sess)
            lines += self._alerts(sess)
            lines += self._deliveries(sess)
            lines += self._health(sess)
        return lines

    @staticmethod
    def _emit(message: str, event: dict[str, Any], level: int = logging.INFO) -> None:
        log.log(level, message, extra={"event": event})

    def _crawls(self, sess: Any) -> int:
        # Jobs get their id when they start but end in any order: log each finished one once, and keep
        # the ids logged above the oldest job still running (a short list).
        rows = sess.execute(
            select(CrawlJob, Source.name)
            .join(Source, Source.id == CrawlJob.source_id)
            .where(CrawlJob.id > self._last_job, CrawlJob.status != "running")
            .order_by(CrawlJob.id)
        ).all()
        count = 0
        for job, name in rows:
            if job.id in self._jobs_seen:
                continue
            self._jobs_seen.add(job.id)
            stats = job.stats or {}
            event = {
                "event": "crawl.finished",
                "source": name,
                "status": job.status,
                **{k: stats.get(k, 0) for k in ("fetched", "postings", "new", "matches", "alerts", "errors")},
                "seconds": stats.get("seconds"),
            }
            if job.error:
                event["error"] = job.error
            message = (
                f"crawl {name}: {job.status}, {event['fetched']} pages, {event['postings']} postings "
                f"({event['new']} new), {event['matches']} matches, {event['alerts']} alerts"
            )
            if job.error:
                message += f"; error: {job.error}"
            self._emit(message, event, logging.INFO if job.status == "ok" else logging.WARNING)
            count += 1
        oldest_running = sess.scalar(
            select(func.min(CrawlJob.id)).where(CrawlJob.id > self._last_job, CrawlJob.status == "running")
        )
        newest = max(self._jobs_seen, default=self._last_job)
        floor = newest if oldest_running is None else min(newest, oldest_running - 1)
        if floor > self._last_job:
            self._last_job = floor
            self._jobs_seen = {i for i in self._jobs_seen if i > floor}
        return count

    def _alerts(self, sess: Any) -> int:
        rows = sess.execute(
            select(Alert, Tenant.name)
            .join(Tenant, Tenant.id == Alert.tenant_id)
            .where(Alert.id > self._last_alert)
            .order_by(Alert.id)
        ).all()
        for alert, tenant in rows:
            event = {
                "event": "alert.raised",
                "alert": alert.id,
                "tenant": tenant,
                "severity": alert.severity,
                "kinds": list(alert.kinds or []),
            }
            self._emit(
                f"alert {alert.id} raised for {tenant}: {alert.severity}, {', '.join(event['kinds'])}", event
            )
            self._last_alert = alert.id
        return len(rows)

    def _deliveries(self, sess: Any) -> int:
        query = (
            select(Delivery, Subscription.channel)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(Delivery.status == "sent")
            .order_by(Delivery.sent_at)
        )
        if self._last_sent is not None:
            query = query.where(Delivery.sent_at > self._last_sent)
        count = 0
        for delivery, channel in sess.execute(query).all():
            self._emit(
                f"delivery {delivery.event_id} sent by {channel} (alert {delivery.alert_id}, "
                f"attempt {delivery.attempts})",
                {
                    "event": "delivery.sent",
                    "delivery": delivery.id,
                    "alert": delivery.alert_id,
                    "channel": channel,
                    "attempts": delivery.attempts,
                },
            )
            self._last_sent = delivery.sent_at
            count += 1
        dead = sess.execute(
            select(Delivery, Subscription.channel)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(Delivery.status == "dead")
        ).all()
        for delivery, channel in dead:
            if delivery.id in self._dead_seen:
                continue
            self._dead_seen.add(delivery.id)
            self._emit(
                f"delivery {delivery.event_id} dead after {delivery.attempts} attempts by {channel}: "
                f"{delivery.last_error or 'no reason recorded'}",
                {
                    "event": "delivery.dead",
                    "delivery": delivery.id,
                    "alert": delivery.alert_id,
                    "channel": channel,
                    "attempts": delivery.attempts,
                    "error": delivery.last_error,
                },
                logging.ERROR,
            )
            count += 1
        return count

    def _health(self, sess: Any) -> int:
        rows = sess.scalars(
            select(OperatorEvent).where(OperatorEvent.id > self._last_event).order_by(OperatorEvent.id)
        ).all()
        for ev in rows:
            level = logging.WARNING if ev.kind == "source.unhealthy" else logging.INFO
            self._emit(ev.message, {"event": ev.kind, "source_id": ev.source_id}, level)
            self._last_event = ev.id
        return len(rows)
