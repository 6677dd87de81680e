"""The notify task signs with the subscription's secret read back from its sealed column, and a machine
without the deployment's secrets key marks the delivery dead with the reason instead of crashing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from alerting.signing import verify
from alerting.tasks import deliver, notify, notify_operator
from core.db import open_database
from core.models import Delivery, Subscription, Tenant
from core.secretbox import PREFIX
from core.settings import Settings, load_settings
from leaksentinel.sim import WebhookReceiver

SECRET = "whsec-tasks-0123456789"


def _digest_delivery(settings: Settings, url: str) -> int:
    db = open_database(settings)
    with db.session() as sess:
        tenant = Tenant(name="acme")
        sess.add(tenant)
        sess.flush()
        sub = Subscription(tenant_id=tenant.id, channel="webhook", target=url, secret=SECRET)
        sess.add(sub)
        sess.flush()
        row = Delivery(
            alert_id=None,
            subscription_id=sub.id,
            event_id="digest-acme-1",
            event_type="alert.digest",
            payload={"event_id": "digest-acme-1", "type": "alert.digest", "alerts": []},
        )
        sess.add(row)
        sess.flush()
        return row.id


def test_a_delivery_signs_with_the_secret_sealed_in_the_database(database_url: str) -> None:
    settings = load_settings()
    with WebhookReceiver() as receiver:
        delivery_id = _digest_delivery(settings, receiver.url)
        with open_database(settings).engine.connect() as conn:
            raw = conn.execute(text("SELECT secret FROM subscriptions")).scalar_one()
        assert raw.startswith(PREFIX) and SECRET not in raw
        assert deliver(settings, delivery_id) == ("sent", None)
        (hit,) = receiver.received
    assert verify(SECRET, hit.body, hit.headers["x-leaksentinel-signature"])
    assert not verify(raw, hit.body, hit.headers["x-leaksentinel-signature"])


@pytest.mark.sqlite_only("a second machine is simulated by a second URL for the same SQLite file")
def test_a_worker_without_the_secrets_key_marks_the_delivery_dead_with_the_reason(tmp_path: Path) -> None:
    settings = load_settings()
    with WebhookReceiver() as receiver:
        delivery_id = _digest_delivery(settings, receiver.url)
        # Another machine: same database file, its own home without secrets.key.
        other = load_settings(
            home=str(tmp_path / "worker-home"), database_url=f"sqlite:///{settings.home}/./leaksentinel.db"
        )
        assert deliver(other, delivery_id) == ("dead", None)
        assert receiver.received == []
    with open_database(settings).session() as sess:
        row = sess.get(Delivery, delivery_id)
        assert row is not None and row.status == "dead" and row.attempts == 1
        assert "secrets.key is missing" in (row.last_error or "")


def test_tasks_refuse_arguments_that_are_not_row_ids() -> None:
    """Whoever holds the broker's password can enqueue anything: a task checks what it was given."""
    for bad in ("42", True, -1, 2**70, None, [1], {"id": 1}):
        assert notify(bad) == "refused"
        assert notify_operator(bad) == "refused"
    assert notify(987654) == "missing"
