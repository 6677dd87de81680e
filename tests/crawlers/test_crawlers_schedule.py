"""Schedules: parsing, stable jitter, leader election, and changes obeyed by a running service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import open_database
from core.errors import BadInput
from core.models import CrawlJob, Source
from core.redis_embedded import EmbeddedRedis, free_port
from core.settings import load_settings
from crawlers.schedule import describe_schedule, jitter_for, next_due, parse_every, schedule_from_options
from crawlers.scheduler import RedisLeader, Scheduler
from leaksentinel.actions.sources import add_source, set_source
from leaksentinel.sim import Underground


def test_parse_and_validate() -> None:
    assert parse_every("5m") == 300 and parse_every("1h") == 3600 and parse_every("30s") == 30
    assert schedule_from_options("2m", None) == "every 120"
    assert schedule_from_options(None, "*/5 * * * *") == "cron */5 * * * *"
    for bad in ("5x", "", "1s"):
        with pytest.raises(BadInput):
            parse_every(bad)
    with pytest.raises(BadInput):
        schedule_from_options(None, "61 * * * *")
    with pytest.raises(BadInput):
        schedule_from_options("5m", "* * * * *")


def test_next_due_for_every_and_cron_never_run_and_run() -> None:
    now = datetime(2026, 1, 1, 12, 2, 30, tzinfo=UTC)
    # every: a never-run source is due at once, whatever the jitter; a run one an interval (+ jitter) later.
    assert next_due("every 300", None, now) == now
    assert next_due("every 300", None, now, jitter_s=17.0) == now
    ran = now - timedelta(seconds=100)
    assert next_due("every 300", ran, now) == ran + timedelta(seconds=300)
    assert next_due("every 300", ran, now, jitter_s=17.0) == ran + timedelta(seconds=317)
    # The due time of a never-run source does not move with the clock: asked a minute later, still due.
    later = now + timedelta(minutes=1)
    assert next_due("every 300", None, later) <= later
    # cron: a never-run source waits for the expression's next time; a run one for the next after its run.
    assert next_due("cron */5 * * * *", None, now) == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    run_at = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    assert next_due("cron */5 * * * *", run_at, now) == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    assert next_due("cron 0 * * * *", run_at, now, jitter_s=3.0) == datetime(2026, 1, 1, 13, 0, 3, tzinfo=UTC)
    assert next_due(None, None, now) is None
    assert next_due("bogus 1", None, now) is None


def test_jitter_is_stable_and_bounded() -> None:
    assert jitter_for(7, "every 300") == jitter_for(7, "every 300")
    assert 0 <= jitter_for(7, "every 300") <= 30
    assert {round(jitter_for(i, "every 3600"), 3) for i in range(20)} != {0.0}  # it does spread
    assert all(jitter_for(i, "every 3600") <= 30 for i in range(50))  # at most 30 s
    assert all(jitter_for(i, "every 60") <= 6 for i in range(50))  # at most 10% of the interval
    assert jitter_for(7, "cron * * * * *") == 0 and jitter_for(7, None) == 0


def test_describe_schedule_as_people_write_it() -> None:
    assert describe_schedule("every 120") == "every 2m"
    assert describe_schedule("every 3600") == "every 1h"
    assert describe_schedule("every 90") == "every 90s"
    assert describe_schedule("every 86400") == "every 1d"
    assert describe_schedule("cron */5 * * * *") == "cron */5 * * * *"
    assert describe_schedule(None) == ""


def test_a_never_crawled_every_source_fires_on_the_first_tick_with_jitter_on_then_waits() -> None:
    """The bug users hit: with jitter on (the default) a new `--every` source never came due."""
    settings = load_settings()
    db = open_database(settings)
    for i in range(5):  # several ids: each gets its own jitter, none may delay the first run
        add_source(db, f"s{i}", "pastebin", f"http://s{i}.example", every="1m")
    fired: list[str] = []
    scheduler = Scheduler(db, fired.append, jitter=True)
    now = datetime.now(UTC)
    assert sorted(scheduler.tick(now)) == [f"s{i}" for i in range(5)]
    # Not again on the next ticks (the run is queued or in progress) ...
    assert scheduler.tick(now + timedelta(seconds=1)) == []
    assert scheduler.tick(now + timedelta(seconds=59)) == []
    # ... and again once an interval plus its jitter (at most 6 s for 1m) has passed.
    assert sorted(scheduler.tick(now + timedelta(seconds=67))) == [f"s{i}" for i in range(5)]


def test_a_run_source_fires_after_its_interval_from_the_last_run() -> None:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "ran", "pastebin", "http://ran.example", every="5m")
    last = datetime.now(UTC) - timedelta(minutes=4)
    with db.session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "ran"))
        assert source is not None
        source.last_run = last
    fired: list[str] = []
    scheduler = Scheduler(db, fired.append, jitter=False)
    assert scheduler.tick(last + timedelta(minutes=4, seconds=59)) == []
    assert scheduler.tick(last + timedelta(minutes=5, seconds=1)) == ["ran"]


def test_a_paused_source_never_fires_and_only_the_leader_fires() -> None:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "a", "pastebin", "http://a.example", every="1m")
    add_source(db, "b", "pastebin", "http://b.example", every="1m")
    set_source(db, "b", pause=True)
    fired: list[str] = []
    assert Scheduler(db, fired.append, jitter=False).tick() == ["a"]
    with EmbeddedRedis() as redis_server:
        first, second = RedisLeader(redis_server.url), RedisLeader(redis_server.url)
        second.me = "another-host:1"
        assert first() and not second() and first()
        assert Scheduler(db, fired.append, leader=second, jitter=False).tick() == []


@pytest.mark.slow
def test_running_service_obeys_interval_change_and_pause_without_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LEAKSENTINEL_HOME": str(home)}  # jitter on, as users run it

    def cli(*args: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "leaksentinel", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr

    with Underground(seed=4, n_noise=1) as site:
        cli("source", "add", "fast", "--kind", "pastebin", "--url", site.base_url, "--every", "1h")
        cli("source", "add", "other", "--kind", "pastebin", "--url", site.base_url, "--every", "10s")
        service = subprocess.Popen(
            [sys.executable, "-m", "leaksentinel", "run", "--port", str(free_port())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        db = open_database(load_settings(environ=env))

        def runs(name: str) -> list[datetime]:
            with db.session() as sess:
                source = sess.scalar(select(Source).where(Source.name == name))
                assert source is not None
                return list(sess.scalars(select(CrawlJob.started_at).where(CrawlJob.source_id == source.id)))

        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (runs("fast") and runs("other")):
                time.sleep(0.5)
            assert len(runs("fast")) == 1 and len(runs("other")) >= 1  # both fire once at start
            cli("source", "set", "other", "--pause")
            cli("source", "set", "fast", "--every", "10s")
            paused_at = datetime.now(UTC)
            time.sleep(2)  # a run of "other" already queued may still start
            other_before = len(runs("other"))
            deadline = time.monotonic() + 75
            while time.monotonic() < deadline and len(runs("fast")) < 3:
                time.sleep(0.5)
            fast = sorted(runs("fast"))
            assert len(fast) >= 3, fast  # 1h became 10s: it fires again without a restart
            gap = (fast[2] - fast[1]).total_seconds()
            assert 8 <= gap <= 30, fast  # 10 s after the previous run finished (a run takes a few s)
            assert len(runs("other")) == other_before, "a paused source fired"
            assert all(t <= paused_at + timedelta(seconds=2) for t in runs("other"))
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
