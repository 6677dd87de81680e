"""The outbox relay: hands pending deliveries to the ``notify`` queue.

Why a relay: alerts and their delivery rows are written in the posting's transaction, never straight
to the broker, so a broker that is down or restarted loses nothing; the relay publishes each pending
row and publishes again any row that stayed unacknowledged too long.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from celery import Celery
from sqlalchemy import or_, select, update

from alerting.digest_job import run_digests
from core.db import Database
from core.models import Delivery, OperatorEvent, utcnow
from core.settings import Settings

__all__ = ["Relay"]

log = logging.getLogger(__name__)
NOTIFY_TASK = "alerting.notify"
OPERATOR_TASK = "alerting.notify_operator"


class Relay:
    def __init__(self, db: Database, celery: Celery, settings: Settings) -> None:
        self.db = db
        self.celery = celery
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_digest = 0.0

    def run_once(self, batch: int = 200) -> int:
        """Publish what is due; returns how many deliveries were published.

        Rows are claimed (marked queued) before publishing, so a worker that finishes fast is never
        overwritten; a row claimed but not published is published again after the requeue delay.
        """
        now = utcnow()
        due_clause = or_(
            Delivery.status == "pending",
            (Delivery.status == "queued")
            & (Delivery.queued_at < now - timedelta(seconds=self.settings.relay_requeue_after_s)),
        )
        with self.db.session() as sess:
            ids = list(sess.scalars(select(Delivery.id).where(due_clause).order_by(Delivery.id).limit(batch)))
            if not ids:
                return 0
            sess.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), due_clause)
                .values(status="queued", queued_at=now)
            )
        published = 0
        for delivery_id in ids:
            try:
                self.celery.send_task(NOTIFY_TASK, args=[delivery_id], queue="notify")
            except Exception as exc:  # broker down: give the rest back, try next tick
                log.warning("relay: broker unavailable (%s); %d deliveries wait", exc, len(ids) - published)
                with self.db.session() as sess:
                    sess.execute(
                        update(Delivery)
                        .where(Delivery.id.in_(ids[published:]), Delivery.status == "queued")
                        .values(status="pending")
                    )
                break
            published += 1
        return published

    def run_operator_events(self, batch: int = 50) -> int:
        """Publish pending operator events (unhealthy or recovered sources)."""
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.relay_requeue_after_s)
        due = or_(
            OperatorEvent.status == "pending", (OperatorEvent.status == "queued") & (OperatorEvent.at < stale)
        )
        with self.db.session() as sess:
            ids = list(
                sess.scalars(select(OperatorEvent.id).where(due).order_by(OperatorEvent.id).limit(batch))
            )
            if not ids:
                return 0
            sess.execute(update(OperatorEvent).where(OperatorEvent.id.in_(ids), due).values(status="queued"))
        for event_id in ids:
            try:
                self.celery.send_task(OPERATOR_TASK, args=[event_id], queue="notify")
            except Exception as exc:
                log.warning("relay: broker unavailable for operator events (%s)", exc)
                with self.db.session() as sess:
                    sess.execute(
                        update(OperatorEvent)
                        .where(OperatorEvent.id.in_(ids), OperatorEvent.status == "queued")
                        .values(status="pending")
                    )
                return 0
        return len(ids)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leaksentinel-relay", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.run_operator_events()
                if time.monotonic() - self._last_digest >= 60:
                    self._last_digest = time.monotonic()
                    run_digests(self.db, self.settings)
            except Exception:
                log.exception("relay tick failed")
            self._stop.wait(self.settings.relay_interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
