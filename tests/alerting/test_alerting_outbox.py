"""Operator events go through the alert outbox's path: full-jitter exponential backoff, dead letters after
``delivery_max_attempts``, one delivery when the receiver is back (issue 10, point 8).

Real parts: the embedded Redis, a Celery worker process, the relay thread, a loopback webhook receiver.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from alerting.backoff import backoff_ceiling, retry_delay
from alerting.outbox import revive_dead
from alerting.relay import Relay
from alerting.signing import verify
from core.celery_app import make_celery
from core.db import open_database
from core.models import OperatorEvent
from core.redis_embedded import EmbeddedRedis
from core.settings import Settings, load_settings
from leaksentinel.processes import WorkerProcess
from leaksentinel.sim import WebhookReceiver

BASE_S, MAX_S, MAX_ATTEMPTS = 0.4, 3.0, 5


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling() -> None:
    ceilings = [backoff_ceiling(n, base_s=1, max_s=30, visibility_timeout_s=40) for n in range(1, 8)]
    assert ceilings == [1, 2, 4, 8, 16, 20, 20]  # doubles, then capped at half the visibility timeout
    rng = random.Random(7)
    samples = [retry_delay(4, base_s=1, max_s=30, visibility_timeout_s=3600, rng=rng) for _ in range(4000)]
    assert all(0 <= s <= 8 for s in samples)
    # Full jitter spreads over [0, ceiling]; equal jitter never went below half of it.
    assert min(samples) < 0.5 and max(samples) > 7.5
    assert 3.7 < sum(samples) / len(samples) < 4.3
    assert retry_delay(10_000, base_s=1, max_s=30, visibility_timeout_s=3600, rng=rng) <= 30


@dataclass
class Post:
    at: float
    event_id: str
    status: int
    #: The event's row as the worker left it before this POST: attempts so far and the retry time.
    attempts_before: int
    queued_at: datetime | None
    next_attempt_at: datetime | None


class SnoopingReceiver(WebhookReceiver):
    """Records, with each POST, what the database said about the event at that moment."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.posts: list[Post] = []

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        event_id = headers.get("x-leaksentinel-event-id", "")
        with open_database(self.settings).session() as sess:
            row = sess.scalars(select(OperatorEvent).where(OperatorEvent.event_id == event_id)).one()
            before = (row.attempts, row.queued_at, row.next_attempt_at)
        status = super()._record(path, headers, body)
        self.posts.append(Post(time.time(), event_id, status, *before))
        return status


@dataclass
class Rig:
    settings: Settings
    receiver: SnoopingReceiver

    def raise_event(self, message: str) -> tuple[int, str]:
        key = str(uuid.uuid4())
        with open_database(self.settings).session() as sess:
            row = OperatorEvent(kind="source.unhealthy", message=message, event_id=key)
            sess.add(row)
            sess.flush()
            return row.id, key

    def row(self, row_id: int) -> OperatorEvent:
        with open_database(self.settings).session() as sess:
            found = sess.get(OperatorEvent, row_id)
            assert found is not None
            return found

    def wait_status(self, row_id: int, status: str, timeout: float) -> OperatorEvent:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.row(row_id).status != status:
            time.sleep(0.05)
        row = self.row(row_id)
        assert row.status == status, (row.status, row.attempts, row.last_error)
        return row

    def posts_for(self, key: str) -> list[Post]:
        return [p for p in self.receiver.posts if p.event_id == key]


@pytest.fixture
def rig(tmp_path: Path, database_url: str) -> Iterator[Rig]:
    base = load_settings()
    receiver = SnoopingReceiver(base)
    receiver.start()
    settings = base.with_(
        operator_webhook=receiver.url,
        operator_webhook_secret="ops-secret",
        delivery_backoff_base_s=BASE_S,
        delivery_backoff_max_s=MAX_S,
        delivery_max_attempts=MAX_ATTEMPTS,
        relay_interval_s=0.1,  # sixty ticks in a run: the old relay re-sent on each of them
        relay_requeue_after_s=60.0,
        broker_visibility_timeout_s=60,
    )
    receiver.settings = settings
    db = open_database(settings)
    log = (tmp_path / "worker.log").open("wb")
    with EmbeddedRedis() as redis_server:
        worker = WorkerProcess(settings, redis_server.url, queues="notify", concurrency=1, log=log).start()
        relay = Relay(db, make_celery(settings, redis_server.url), settings)
        relay.start()
        try:
            yield Rig(settings, receiver)
        finally:
            relay.stop()
            worker.stop(5)
            receiver.stop()
            log.close()


@pytest.mark.slow
def test_an_operator_event_backs_off_goes_dead_after_max_attempts_then_is_delivered_once(rig: Rig) -> None:
    rig.receiver.fail_next(MAX_ATTEMPTS, status=503)  # the operators' webhook is down for every attempt
    row_id, key = rig.raise_event("source pastes (pastebin): failed 3 runs in a row")
    dead = rig.wait_status(row_id, "dead", 40)
    posts = rig.posts_for(key)
    assert dead.attempts == MAX_ATTEMPTS and len(posts) == MAX_ATTEMPTS, [p.attempts_before for p in posts]
    assert "503" in (dead.last_error or "") and dead.next_attempt_at is None
    assert [p.attempts_before for p in posts] == list(range(MAX_ATTEMPTS))  # never sent twice per attempt
    assert posts[0].next_attempt_at is None
    for n, post in enumerate(posts[1:], start=1):
        # Attempt n+1 waited for the retry time chosen after attempt n ...
        assert post.next_attempt_at is not None and post.queued_at is not None
        assert post.at >= post.next_attempt_at.timestamp() - 0.05, n
        # ... which was drawn from [0, ceiling(n)], the ceiling doubling: 0.4, 0.8, 1.6, 3.0 s.
        delay = (post.next_attempt_at - post.queued_at).total_seconds()
        ceiling = backoff_ceiling(n, base_s=BASE_S, max_s=MAX_S, visibility_timeout_s=60)
        assert 0 <= delay <= ceiling + 1e-3, (n, delay, ceiling)
    # Nothing more once dead, however many relay ticks pass.
    time.sleep(0.6)
    assert len(rig.posts_for(key)) == MAX_ATTEMPTS

    # The receiver is back: the dead letter goes out again, once, with the same event id, signed.
    assert revive_dead(open_database(rig.settings), OperatorEvent, [row_id]) == [row_id]
    sent = rig.wait_status(row_id, "sent", 20)
    time.sleep(0.6)
    ok = [p for p in rig.posts_for(key) if p.status < 400]
    assert len(ok) == 1 and sent.attempts == 1
    (hit,) = [r for r in rig.receiver.received if r.status < 400]
    assert verify("ops-secret", hit.body, hit.headers["x-leaksentinel-signature"])


@pytest.mark.slow
def test_an_operator_event_is_delivered_once_when_the_receiver_recovers_before_max_attempts(rig: Rig) -> None:
    rig.receiver.fail_next(2, status=502)
    row_id, key = rig.raise_event("source forum (forum): recovered")
    sent = rig.wait_status(row_id, "sent", 20)
    time.sleep(0.6)  # several relay ticks: nothing is sent again
    posts = rig.posts_for(key)
    assert [p.status for p in posts] == [502, 502, 200]
    assert sent.attempts == 3 and sent.last_error is None
