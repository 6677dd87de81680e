"""One outbox path for alert deliveries and operator events: claim, publish, retry with backoff, dead.

Why one path: operator events (a source turned unhealthy or recovered) had a loop of their own that
re-sent a failed event on every relay tick, with no backoff, and gave up after 12 tries in 6 seconds,
while alert deliveries waited. Both kinds of row now carry the same bookkeeping (``status``,
``attempts``, ``last_error``, ``queued_at``, ``next_attempt_at``) and go through these functions:

* the relay claims due rows (:func:`claim_due`: one atomic statement, so of two relays racing over the
  same rows each row goes to exactly one) and hands only the rows it won to the broker
  (:func:`publish_due`);
* the task that tried one records the outcome (:func:`record_attempt`): sent; or queued again with a
  delay from :func:`alerting.backoff.retry_delay` that the task passes to Celery's ``retry(countdown=)``;
  or dead after ``delivery_max_attempts`` (or at once when retrying cannot help);
* a row whose retry was due long ago (its broker message lost with a restarted Redis) is claimed again;
  while its retry is scheduled (``next_attempt_at`` in the future) the Celery retry owns it, and the
  relay leaves it alone, so each delivery has one retry chain and the dead-letter window is the backoff's.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import ColumnElement, Dialect, func, or_, select, update

from alerting.backoff import retry_delay
from core.db import Database
from core.models import Delivery, OperatorEvent, utcnow
from core.settings import Settings

__all__ = [
    "OutboxModel",
    "claim_due",
    "due_clause",
    "owns_attempt",
    "publish_due",
    "record_attempt",
    "revive_dead",
]

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


def claims_with_returning(dialect: Dialect) -> bool:
    """Whether one ``UPDATE ... RETURNING`` can claim rows here (PostgreSQL; SQLite from 3.35)."""
    if dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return False
    return bool(getattr(dialect, "update_returning", False))


def claim_due(db: Database, model: OutboxModel, settings: Settings, batch: int, now: datetime) -> list[int]:
    """Mark up to ``batch`` due rows queued and return the ids of those this caller won, in id order.

    Why atomic: two relays (two ``run`` processes, or a fleet's) see the same due rows; a claim that
    selects ids and then publishes them all, whatever its UPDATE changed, sends each row twice. Here the
    statement that changes a row is the one that reports it: ``UPDATE ... WHERE id IN (due rows) AND
    <still due> RETURNING id``. On PostgreSQL the inner select takes ``FOR UPDATE SKIP LOCKED`` so a
    second relay passes over rows the first holds and claims the next ones instead of waiting; the
    outer ``<still due>`` is re-checked on a row another transaction changed meanwhile. Without
    RETURNING (SQLite older than 3.35) each row is claimed by its own conditional UPDATE and kept only
    when it changed one row.
    """
    due = due_clause(model, now, settings)
    values = {"status": "queued", "queued_at": now, "next_attempt_at": None}
    candidates = select(model.id).where(due).order_by(model.id).limit(batch)
    with db.session() as sess:
        dialect = sess.get_bind().dialect
        if dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        if claims_with_returning(dialect):
            stmt = (
                update(model)
                .where(model.id.in_(candidates.scalar_subquery()), due)
                .values(**values)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
            return sorted(sess.scalars(stmt))
        won: list[int] = []
        for row_id in list(sess.scalars(candidates)):
            one = (
                update(model)
                .where(model.id == row_id, due)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(sess.execute(one), "rowcount", 0) == 1:
                won.append(row_id)
        return won


def publish_due(
    db: Database, celery: Celery, model: OutboxModel, task: str, settings: Settings, batch: int
) -> int:
    """Claim due rows (:func:`claim_due`), then send one ``task(row_id)`` each to the ``notify`` queue.

    Only the rows this call claimed are published, so a row goes to the broker once however many
    relays run. Rows are claimed before publishing so a worker that finishes fast is never overwritten;
    if the broker is down the rest are given back as pending for the next tick. Returns how many were
    published.
    """
    ids = claim_due(db, model, settings, batch, utcnow())
    if not ids:
        return 0
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


def owns_attempt(row: Delivery | OperatorEvent, now: datetime, *, early_s: float = 5.0) -> bool:
    """Whether a task message that just arrived for ``row`` may attempt it now.

    Why: the retry chain that scheduled ``next_attempt_at`` owns the row until then. A second message
    (a requeue of a row whose first message only waited behind a long queue) arriving while that retry
    is scheduled must not start a second chain; it should return without an attempt. ``early_s``
    allows for clocks that differ a little between workers: a retry that runs slightly early by this
    worker's clock is still the owner. Dropping a message by mistake loses nothing: the relay requeues
    the row once it is overdue.
    """
    if row.status != "queued" or row.next_attempt_at is None:
        return row.status in {"pending", "queued"}
    return row.next_attempt_at <= now + timedelta(seconds=early_s)


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
