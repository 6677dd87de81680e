"""One outbox path for alert deliveries and operator events: claim, publish, retry with backoff, dead.

Why one path: operator events (a source turned unhealthy or recovered) had a loop of their own that
re-sent a failed event on every relay tick, with no backoff, and gave up after 12 tries in 6 seconds,
while alert deliveries waited. Both kinds of row now carry the same bookkeeping (``status``,
``attempts``, ``last_error``, ``queued_at``, ``next_attempt_at``) and go through these functions:

* the relay claims due rows (:func:`due_clause`) and hands them to the broker (:func:`publish_due`);
* the task that tried one records the outcome (:func:`record_attempt`): sent; or queued again with a
  delay from :func:`alerting.backoff.retry_delay` that the task passes to Celery's ``retry(countdown=)``;
  or dead after ``delivery_max_attempts`` (or at once when retrying cannot help);
* a row whose retry was due long ago (its broker message lost with a restarted Redis) is claimed again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import ColumnElement, func, or_, select, update

from alerting.backoff import retry_delay
from core.db import Database
from core.models import Delivery, OperatorEvent, utcnow
from core.settings import Settings

__all__ = ["OutboxModel", "due_clause", "publish_due", "record_attempt", "revive_dead"]

log = logging.getLogger(__name__)

OutboxModel = type[Delivery] | type[OperatorEvent]


def due_clause(model: OutboxModel, now: datetime, settings: Settings) -> ColumnElement[bool]:
    """Rows to hand to the broker: new ones, and queued ones overdue by ``relay_requeue_after_s``.

    A queued row is overdue from its retry time when it failed before (``next_attempt_at``: the broker
    holds the retry until then), else from when it was handed over (``queued_at``).
    """
    overdue = now - timedelta(seconds=settings.relay_requeue_after_s)
    waiting_since = func.coalesce(model.next_attempt_at, model.queued_at)
    return or_(model.status == "pending", (model.status == "queued") & (waiting_since < overdue))


def publish_due(
    db: Database, celery: Celery, model: OutboxModel, task: str, settings: Settings, batch: int
) -> int:
    """Claim due rows (mark them queued), then send one ``task(row_id)`` each to the ``notify`` queue.

    Rows are claimed before publishing so a worker that finishes fast is never overwritten; if the broker
    is down the rest are given back as pending for the next tick. Returns how many were published.
    """
    now = utcnow()
    due = due_clause(model, now, settings)
    with db.session() as sess:
        ids = list(sess.scalars(select(model.id).where(due).order_by(model.id).limit(batch)))
        if not ids:
            return 0
        sess.execute(
            update(model)
            .where(model.id.in_(ids), due)
            .values(status="queued", queued_at=now, next_attempt_at=None)
        )
    published = 0
    for row_id in ids:
        try:
            celery.send_task(task, args=[row_id], queue="notify")
        except Exception as exc:  # broker down: give the rest back, try next tick
            log.warning(
                "relay: broker unavailable (%s); %d %s rows wait",
                exc,
                len(ids) - published,
                model.__tablename__,
            )
            with db.session() as sess:
                sess.execute(
                    update(model)
                    .where(model.id.in_(ids[published:]), model.status == "queued")
                    .values(status="pending")
                )
            break
        published += 1
    return published


def record_attempt(
    row: Delivery | OperatorEvent,
    settings: Settings,
    *,
    ok: bool,
    retryable: bool,
    error: str | None,
    now: datetime | None = None,
) -> tuple[str, float | None]:
    """Count one attempt on ``row`` and decide what follows; returns (status, retry delay or None)."""
    now = now or utcnow()
    row.attempts = (row.attempts or 0) + 1
    if ok:
        row.status, row.last_error, row.next_attempt_at = "sent", None, None
        return "sent", None
    row.last_error = (error or "failed")[:2000]
    if retryable and row.attempts < settings.delivery_max_attempts:
        delay = retry_delay(
            row.attempts,
            base_s=settings.delivery_backoff_base_s,
            max_s=settings.delivery_backoff_max_s,
            visibility_timeout_s=settings.broker_visibility_timeout_s,
        )
        row.status, row.queued_at = "queued", now
        row.next_attempt_at = now + timedelta(seconds=delay)
        return "queued", delay
    row.status, row.next_attempt_at = "dead", None
    return "dead", None


def revive_dead(db: Database, model: OutboxModel, ids: list[int] | None = None) -> list[int]:
    """Put dead rows (all, or those of ``ids``) back in the outbox with the same event id; returns their ids."""
    with db.session() as sess:
        query: Any = select(model).where(model.status == "dead")
        if ids is not None:
            query = query.where(model.id.in_(ids))
        rows = list(sess.scalars(query.order_by(model.id)))
        for row in rows:
            row.status, row.attempts, row.queued_at, row.next_attempt_at = "pending", 0, None, None
        return [row.id for row in rows]
