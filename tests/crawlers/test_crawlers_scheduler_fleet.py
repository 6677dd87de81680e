"""The scheduler in a fleet: a slot fires once across a leader change and when two instances both think
they lead; a failed fire is retried; the daily purge runs once per interval, fleet-wide (issue 14, 5 and 6).

Real parts: the embedded Redis holds the leader lease and the fired log, as in ``run``/``scheduler``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.db import open_database
from core.models import Alert, Posting, Source, Tenant
from core.redis_embedded import EmbeddedRedis
from core.settings import load_settings
from crawlers.scheduler import Housekeeping, MemoryFiredLog, RedisFiredLog, RedisLeader, Scheduler
from leaksentinel.actions.sources import add_source
from leaksentinel.service import housekeeping

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def redis_url() -> Iterator[str]:
    with EmbeddedRedis() as server:
        yield server.url


def _leader(url: str, me: str) -> RedisLeader:
    leader = RedisLeader(url, ttl_s=5)
    leader.me = me
    return leader


def test_a_new_leader_knows_what_the_last_one_fired(redis_url: str) -> None:
    db = open_database(load_settings())
    add_source(db, "pastes", "pastebin", "http://pastes.example", every="1m")
    fired_a: list[str] = []
    fired_b: list[str] = []
    a = Scheduler(
        db, fired_a.append, leader=_leader(redis_url, "a:1"), jitter=False, fired_log=RedisFiredLog(redis_url)
    )
    b_leader = _leader(redis_url, "b:2")
    b = Scheduler(db, fired_b.append, leader=b_leader, jitter=False, fired_log=RedisFiredLog(redis_url))
    assert a.tick(T0) == ["pastes"]  # never run: due at once
    assert b.tick(T0 + timedelta(seconds=1)) == []  # a leads
    b_leader.client.delete(RedisLeader.KEY)  # a's machine stops; its lease is gone
    # b leads now: the source was fired 10 s ago (its crawl has not even started), so nothing is due
    assert b.tick(T0 + timedelta(seconds=10)) == []
    assert b.tick(T0 + timedelta(seconds=59)) == []
    assert b.tick(T0 + timedelta(seconds=61)) == ["pastes"]
    assert b.tick(T0 + timedelta(seconds=62)) == []
    assert fired_a == ["pastes"] and fired_b == ["pastes"]


def test_two_instances_that_both_think_they_lead_fire_a_slot_once(redis_url: str) -> None:
    db = open_database(load_settings())
    add_source(db, "pastes", "pastebin", "http://pastes.example", every="5m")
    add_source(db, "forum", "pastebin", "http://forum.example", every="5m")
    fired: list[str] = []
    both = [Scheduler(db, fired.append, jitter=False, fired_log=RedisFiredLog(redis_url)) for _ in range(2)]
    for minute in range(0, 16):
        for s in both:
            s.tick(T0 + timedelta(minutes=minute, seconds=1))
    # slots at 0, 5, 10, 15 minutes: four fires per source, whichever instance got each one
    assert sorted(fired) == ["forum"] * 4 + ["pastes"] * 4


def test_a_fire_that_fails_is_retried_on_the_next_tick() -> None:
    db = open_database(load_settings())
    add_source(db, "pastes", "pastebin", "http://pastes.example", every="1m")
    calls: list[str] = []

    def fire(name: str) -> None:
        calls.append(name)
        if len(calls) == 1:
            raise ConnectionError("broker down")

    scheduler = Scheduler(db, fire, jitter=False, fired_log=MemoryFiredLog())
    assert scheduler.tick(T0) == []
    assert scheduler.tick(T0 + timedelta(seconds=1)) == ["pastes"]
    assert calls == ["pastes", "pastes"]


def test_housekeeping_runs_once_per_interval_across_the_fleet(redis_url: str) -> None:
    db = open_database(load_settings())
    runs: list[str] = []
    chores = lambda who: (Housekeeping("purge", 86400, lambda: runs.append(who)),)  # noqa: E731
    a = Scheduler(
        db, lambda _n: None, jitter=False, fired_log=RedisFiredLog(redis_url), housekeeping=chores("a")
    )
    b = Scheduler(
        db, lambda _n: None, jitter=False, fired_log=RedisFiredLog(redis_url), housekeeping=chores("b")
    )
    a.tick(T0)
    a.wait_for_chores()
    b.tick(T0 + timedelta(hours=1))
    b.wait_for_chores()
    assert runs == ["a"]
    b.tick(T0 + timedelta(days=1, seconds=1))
    b.wait_for_chores()
    a.tick(T0 + timedelta(days=1, seconds=2))
    a.wait_for_chores()
    assert runs == ["a", "b"]


def test_the_scheduler_purges_old_text_but_keeps_what_an_alert_holds(redis_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    old = datetime.now(UTC) - timedelta(days=settings.retention_days + 5)
    ids: dict[str, int] = {}
    with db.session() as sess:
        tenant = Tenant(name="acme")
        source = Source(name="paste", kind="pastebin", url="http://127.0.0.1:1/")
        sess.add_all([tenant, source])
        sess.flush()
        for name, fetched in (("held", old), ("unheld", old), ("new", datetime.now(UTC))):
            posting = Posting(
                source_id=source.id,
                url=f"http://127.0.0.1:1/{name}",
                fetched=fetched,
                content_hash=name * 8,
                text=f"leaked row {name}",
            )
            sess.add(posting)
            sess.flush()
            ids[name] = posting.id
        sess.add(Alert(tenant_id=tenant.id, posting_id=ids["held"], severity="high"))
    scheduler = Scheduler(
        db,
        lambda _n: None,
        jitter=False,
        fired_log=RedisFiredLog(redis_url),
        housekeeping=housekeeping(db, settings),
    )
    scheduler.tick()
    scheduler.wait_for_chores()
    with db.session() as sess:
        text = {name: sess.get(Posting, pid).text for name, pid in ids.items()}  # type: ignore[union-attr]
    assert text == {"held": "leaked row held", "unheld": "", "new": "leaked row new"}


def test_purge_can_be_turned_off() -> None:
    settings = replace(load_settings(), purge_every_s=0)
    assert housekeeping(open_database(settings), settings) == ()
