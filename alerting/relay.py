"""The outbox relay: hands pending deliveries to the ``notify`` queue.

Why a relay: alerts and their delivery rows are written in the posting's transaction, never straight
to the broker, so a broker that is down or restarted loses nothing; the relay publishes each pending
row and publishes again any row that stayed unacknowledged too long. Operator events take the same
path (alerting.outbox): same backoff, same dead letters.

Any number of relays may run (one per ``run``, several in a fleet): each tick claims its rows with one
atomic statement (alerting.outbox.claim_due) and publishes only those, so a row goes out once.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from alerting.digest_job import run_digests
from alerting.outbox import publish_due
from core.db import Database, OutageLog
from core.models import Delivery, OperatorEvent
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
        """Claim and publish the alert deliveries that are due; returns how many this relay published."""
        return publish_due(self.db, self.celery, Delivery, NOTIFY_TASK, self.settings, batch)

    def run_operator_events(self, batch: int = 50) -> int:
        """Publish the operator events (unhealthy or recovered sources) that are due, on the same path."""
        return publish_due(self.db, self.celery, OperatorEvent, OPERATOR_TASK, self.settings, batch)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leaksentinel-relay", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        outage = OutageLog(log, "relay tick")
        while not self._stop.is_set():
            try:
                self.run_once()
                self.run_operator_events()
                if time.monotonic() - self._last_digest >= 60:
                    self._last_digest = time.monotonic()
                    run_digests(self.db, self.settings)
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.ok()
            self._stop.wait(self.settings.relay_interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
