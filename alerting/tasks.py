"""The ``notify`` task: deliver one outbox row to its channel, retrying until it lands or is dead.

Why it is safe to run twice: the delivery's event id is the receiver's idempotency key, a delivery
already sent is skipped, and the task acknowledges late so a worker killed mid-send re-runs it.
"""

from __future__ import annotations

import logging

from celery import Task

from alerting.channels import build_channel
from alerting.channels.email import SmtpConfig
from alerting.events import build_event
from alerting.outbox import owns_attempt, record_attempt
from core import telemetry
from core.alert_view import alert_to_dict
from core.celery_app import app
from core.db import open_database
from core.models import Alert, Delivery, OperatorEvent, Subscription, utcnow
from core.secretbox import SecretKeyError
from core.settings import Settings, load_settings

__all__ = ["deliver", "deliver_operator_event", "notify", "notify_operator", "smtp_config"]

log = logging.getLogger(__name__)
telemetry.instrument_celery()  # a worker that loads these tasks counts every task it runs


def _is_row_id(value: object) -> bool:
    """Task arguments come from the broker: only a plain positive integer names an outbox row."""
    return type(value) is int and 0 < value < 2**63


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        starttls=settings.smtp_starttls,  # type: ignore[arg-type]
        ssl=settings.smtp_ssl,
        sender=settings.smtp_sender,
    )


def deliver(settings: Settings, delivery_id: int) -> tuple[str, float | None]:
    """Try one delivery once; returns (new status, retry delay or None)."""
    db = open_database(settings)
    with db.session() as sess:
        delivery = sess.get(Delivery, delivery_id)
        if delivery is None or delivery.status in {"sent", "dead"}:
            return (delivery.status if delivery else "missing", None)
        if not owns_attempt(delivery, utcnow()):  # a duplicate message while this row's retry is scheduled
            return (delivery.status, None)
        try:
            sub = sess.get(Subscription, delivery.subscription_id)
        except SecretKeyError as exc:  # this machine lacks the deployment's secrets.key: say so, once
            delivery.attempts += 1
            delivery.status, delivery.last_error = "dead", str(exc)[:2000]
            telemetry.count_delivery("unknown", "dead")
            return ("dead", None)
        if delivery.event_type == "alert.digest" and delivery.payload and sub is not None:
            event = dict(delivery.payload)
        else:
            alert = sess.get(Alert, delivery.alert_id) if delivery.alert_id is not None else None
            if alert is None or sub is None:
                delivery.status = "dead"
                delivery.last_error = "alert or subscription deleted"
                telemetry.count_delivery(sub.channel if sub else "unknown", "dead")
                return ("dead", None)
            view = alert_to_dict(sess, alert, with_findings=True)
            console = f"{settings.console_url}/alerts/{alert.id}"
            event = build_event(view, event_id=delivery.event_id, console_url=console)
        if sub is None:
            delivery.status = "dead"
            delivery.last_error = "subscription deleted"
            telemetry.count_delivery("unknown", "dead")
            return ("dead", None)
        channel_kind, target, secret = sub.channel, sub.target, sub.secret
        event_id = delivery.event_id
    try:
        channel = build_channel(
            channel_kind,
            target,
            secret,
            allow_private=settings.private_targets_allowed,
            smtp=smtp_config(settings),
        )
        result = channel.send(event, event_id=event_id)
        ok, retryable, error = (
            result.ok,
            result.retryable,
            result.error or (f"HTTP {result.status}" if result.status else None),
        )
    except Exception as exc:  # a channel bug or refused target must not lose the delivery silently
        ok, retryable, error = False, False, f"{type(exc).__name__}: {exc}"
    with db.session() as sess:
        delivery = sess.get(Delivery, delivery_id)
        if delivery is None:
            return ("missing", None)
        status, delay = record_attempt(delivery, settings, ok=ok, retryable=retryable, error=error)
        latency: float | None = None
        if status == "sent":
            delivery.sent_at = utcnow()
            latency = (delivery.sent_at - delivery.created_at).total_seconds()  # stored -> delivered
    # Counted once the outcome is committed: a scrape never shows a delivery the outbox does not.
    telemetry.count_delivery(channel_kind, {"sent": "sent", "dead": "dead"}.get(status, "retry"), latency)
    return (status, delay)


@app.task(name="alerting.notify", bind=True, acks_late=True, max_retries=None)
def notify(self: Task, delivery_id: int) -> str:
    if not _is_row_id(delivery_id):  # anyone with the broker's password could enqueue anything
        log.warning("notify: refused a task with a bad delivery id %r", str(delivery_id)[:40])
        return "refused"
    settings = load_settings()
    status, delay = deliver(settings, delivery_id)
    if status == "queued" and delay is not None:
        log.info("delivery %s failed; retrying in %.1f s", delivery_id, delay)
        raise self.retry(countdown=delay)
    return status


def deliver_operator_event(settings: Settings, event_id: int) -> str:
    """Send an operator event to the operator channels configured in the settings; returns its status."""
    return attempt_operator_event(settings, event_id)[0]


def attempt_operator_event(settings: Settings, event_id: int) -> tuple[str, float | None]:
    """Try an operator event once; returns (new status, retry delay or None), as :func:`deliver` does."""
    db = open_database(settings)
    with db.session() as sess:
        row = sess.get(OperatorEvent, event_id)
        if row is None or row.status in {"sent", "dead", "unrouted"}:
            return (row.status if row else "missing", None)
        if not owns_attempt(row, utcnow()):  # a duplicate message while this event's retry is scheduled
            return (row.status, None)
        event_key = row.event_id
        payload = {
            "event_id": event_key,
            "type": row.kind,
            "message": row.message,
            "source_id": row.source_id,
            "at": row.at.isoformat(),
        }
    targets: list[tuple[str, str, str | None]] = []
    if settings.operator_webhook:
        targets.append(("webhook", settings.operator_webhook, settings.operator_webhook_secret or "operator"))
    if settings.operator_email:
        targets.append(("email", settings.operator_email, None))
    errors: list[str] = []
    retryable = False
    for kind, target, secret in targets:
        try:
            channel = build_channel(
                kind,
                target,
                secret,
                allow_private=settings.private_targets_allowed,
                smtp=smtp_config(settings),
            )
            result = channel.send(payload, event_id=event_key)
            if not result.ok:
                errors.append(result.error or f"HTTP {result.status}")
                retryable = retryable or result.retryable
        except Exception as exc:  # a refused target or a channel bug: retrying cannot help
            errors.append(f"{type(exc).__name__}: {exc}")
    with db.session() as sess:
        row = sess.get(OperatorEvent, event_id)
        if row is None:
            return ("missing", None)
        if not targets:
            row.attempts += 1
            row.status, row.last_error = "unrouted", "no operator channel configured"
            return ("unrouted", None)
        return record_attempt(row, settings, ok=not errors, retryable=retryable, error="; ".join(errors))


@app.task(name="alerting.notify_operator", bind=True, acks_late=True, max_retries=None)
def notify_operator(self: Task, event_id: int) -> str:
    if not _is_row_id(event_id):
        log.warning("notify_operator: refused a task with a bad event id %r", str(event_id)[:40])
        return "refused"
    status, delay = attempt_operator_event(load_settings(), event_id)
    if status == "queued" and delay is not None:
        log.info("operator event %s failed; retrying in %.1f s", event_id, delay)
        raise self.retry(countdown=delay)
    return status


@app.task(name="alerting.echo", acks_late=True, ignore_result=True)
def echo(token: str) -> None:
    """A bare task for bench/alerts.py's baseline: records its arrival in the broker's Redis."""
    import time

    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    client.rpush("leaksentinel:bench:echo", f"{token} {time.time()}")
