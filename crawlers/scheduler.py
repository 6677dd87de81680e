"""The crawl scheduler: fires ``crawl`` tasks for sources that are due, and the daily housekeeping.

Why it reads the sources table every tick: ``source set --every/--cron/--pause/--resume`` writes the
table, and the next tick obeys it, so schedules change in a running service without a restart.

Why fires are recorded in a shared log: in a fleet, the scheduler leader can change (a machine stops,
its Redis lease lapses). The new leader anchors each schedule on what the last leader fired (not on the
source's ``last_run``, which moves only when a crawl starts), and claims each slot before firing it, so a
slot fires once across a leader change, even when two instances briefly both think they lead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select

from core.db import Database, OutageLog
from core.models import Source, utcnow
from crawlers.schedule import jitter_for, next_due

__all__ = ["FiredLog", "Housekeeping", "MemoryFiredLog", "RedisFiredLog", "RedisLeader", "Scheduler"]

log = logging.getLogger(__name__)

#: How long a claimed slot is remembered: longer than any tick gap, shorter than any sane schedule matters.
SLOT_TTL_S = 6 * 3600


class FiredLog(Protocol):
    """What the scheduler fired, shared by every instance that may lead."""

    def load(self) -> dict[str, datetime]: ...

    def claim(self, key: str, slot: datetime) -> bool:
        """True for the first instance to claim this slot of ``key``; False for every later one."""
        ...

    def release(self, key: str, slot: datetime) -> None:
        """Give a claimed slot back (the fire failed): the next tick tries again."""
        ...

    def record(self, key: str, when: datetime) -> None: ...


class MemoryFiredLog:
    """One process on its own (tests, a scheduler without a broker): nothing to share."""

    def __init__(self) -> None:
        self._fired: dict[str, datetime] = {}
        self._claimed: set[tuple[str, datetime]] = set()

    def load(self) -> dict[str, datetime]:
        return dict(self._fired)

    def claim(self, key: str, slot: datetime) -> bool:
        if (key, slot) in self._claimed:
            return False
        self._claimed.add((key, slot))
        return True

    def release(self, key: str, slot: datetime) -> None:
        self._claimed.discard((key, slot))

    def record(self, key: str, when: datetime) -> None:
        self._fired[key] = when


class RedisFiredLog:
    """The fleet's log in the broker: a hash of last fire times and one expiring key per claimed slot."""

    FIRED = "leaksentinel:scheduler:fired"
    SLOT = "leaksentinel:scheduler:slot:"

    def __init__(self, redis_url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=2)

    def load(self) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for key, value in self.client.hgetall(self.FIRED).items():
            try:
                name = key.decode() if isinstance(key, bytes) else str(key)
                out[name] = datetime.fromtimestamp(float(value), UTC)
            except (ValueError, UnicodeDecodeError):
                continue
        return out

    def _slot(self, key: str, slot: datetime) -> str:
        return f"{self.SLOT}{key}:{int(slot.timestamp())}"

    def claim(self, key: str, slot: datetime) -> bool:
        return bool(self.client.set(self._slot(key, slot), "1", nx=True, ex=SLOT_TTL_S))

    def release(self, key: str, slot: datetime) -> None:
        self.client.delete(self._slot(key, slot))

    def record(self, key: str, when: datetime) -> None:
        self.client.hset(self.FIRED, key, f"{when.timestamp():.3f}")


@dataclass(frozen=True)
class Housekeeping:
    """A job the leader runs every ``every_s`` seconds (``purge``, daily), on a thread of its own."""

    name: str
    every_s: float
    run: Callable[[], object]


class Scheduler:
    def __init__(
        self,
        db: Database,
        fire: Callable[[str], None],
        *,
        tick_s: float = 1.0,
        leader: Callable[[], bool] | None = None,
        jitter: bool = True,
        fired_log: FiredLog | None = None,
        housekeeping: tuple[Housekeeping, ...] = (),
    ) -> None:
        self.db = db
        self.fire = fire
        self.tick_s = tick_s
        self.leader = leader or (lambda: True)
        self.jitter = jitter
        self.fired_log: FiredLog = fired_log or MemoryFiredLog()
        self.housekeeping = housekeeping
        self.fired: list[tuple[str, datetime]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chores: dict[str, threading.Thread] = {}

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        fired: list[str] = []
        if not self.leader():  # another service instance schedules the fleet
            return fired
        with self.db.session() as sess:
            sources = sess.scalars(
                select(Source).where(Source.enabled.is_(True), Source.schedule.is_not(None))
            ).all()
            plan = [(s.id, s.name, s.schedule, s.last_run) for s in sources]
        last_fired = self.fired_log.load()
        for source_id, name, schedule, last_run in plan:
            key = f"source:{source_id}"
            anchor = max(filter(None, [last_run, last_fired.get(key)]), default=None)
            due = next_due(
                schedule, anchor, now, jitter_s=jitter_for(source_id, schedule) if self.jitter else 0.0
            )
            if due is None or due > now:
                continue
            # A never-run source is due "now": its slot is the anchor-less first fire, one per source.
            slot = due if anchor is not None else datetime.fromtimestamp(0, UTC)
            if not self.fired_log.claim(key, slot):
                continue  # another instance fired this slot
            try:
                self.fire(name)
            except Exception as exc:
                log.warning("scheduler: could not queue crawl of %s: %s", name, exc)
                self.fired_log.release(key, slot)
                continue
            self.fired_log.record(key, now)
            # One line per fire (DEBUG: `run` logs finished crawls, not fires); a fleet test counts them.
            log.debug("scheduler: fired crawl of %s (slot %d)", name, int(slot.timestamp()))
            self.fired.append((name, now))
            fired.append(name)
        self._housekeep(now, last_fired)
        return fired

    def _housekeep(self, now: datetime, last_fired: dict[str, datetime]) -> None:
        for chore in self.housekeeping:
            key = f"chore:{chore.name}"
            last = last_fired.get(key)
            if last is not None and now < last + timedelta(seconds=chore.every_s):
                continue
            running = self._chores.get(chore.name)
            if running is not None and running.is_alive():
                continue
            slot = (last or datetime.fromtimestamp(0, UTC)) + timedelta(seconds=chore.every_s)
            if not self.fired_log.claim(key, slot):
                continue
            self.fired_log.record(key, now)
            thread = threading.Thread(
                target=self._run_chore, args=(chore,), name=f"leaksentinel-{chore.name}", daemon=True
            )
            self._chores[chore.name] = thread
            thread.start()

    @staticmethod
    def _run_chore(chore: Housekeeping) -> None:
        try:
            chore.run()
        except Exception:
            log.exception("scheduler: %s failed", chore.name)

    def wait_for_chores(self, timeout_s: float = 30.0) -> None:
        """Tests and shutdown: let running housekeeping finish."""
        for thread in list(self._chores.values()):
            thread.join(timeout_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leaksentinel-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        outage = OutageLog(log, "scheduler tick")
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.ok()
            self._stop.wait(self.tick_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


class RedisLeader:
    """Leader election for the scheduler: the instance holding a short-lived Redis key fires crawls."""

    KEY = "leaksentinel:scheduler:leader"

    def __init__(self, redis_url: str, ttl_s: float = 5.0) -> None:
        import os
        import socket

        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=2)
        self.ttl_ms = int(ttl_s * 1000)
        self.me = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self) -> bool:
        try:
            if self.client.set(self.KEY, self.me, nx=True, px=self.ttl_ms):
                return True
            holder = self.client.get(self.KEY)
            if (holder.decode() if isinstance(holder, bytes) else str(holder or "")) == self.me:
                self.client.pexpire(self.KEY, self.ttl_ms)
                return True
            return False
        except Exception as exc:  # Redis unreachable: do not fire blind
            log.warning("scheduler: leader check failed: %s", exc)
            return False
