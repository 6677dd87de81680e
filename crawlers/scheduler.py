"""The crawl scheduler: fires ``crawl`` tasks for sources that are due.

Why it reads the sources table every tick: ``source set --every/--cron/--pause/--resume`` writes the
table, and the next tick obeys it, so schedules change in a running service without a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from core.db import Database
from core.models import Source, utcnow
from crawlers.schedule import jitter_for, next_due

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        db: Database,
        fire: Callable[[str], None],
        *,
        tick_s: float = 1.0,
        leader: Callable[[], bool] | None = None,
        jitter: bool = True,
    ) -> None:
        self.db = db
        self.fire = fire
        self.tick_s = tick_s
        self.leader = leader or (lambda: True)
        self.jitter = jitter
        self.fired: list[tuple[str, datetime]] = []
        self._last_fired: dict[int, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        for source_id, name, schedule, last_run in plan:
            anchor = max(filter(None, [last_run, self._last_fired.get(source_id)]), default=None)
            due = next_due(
                schedule, anchor, now, jitter_s=jitter_for(source_id, schedule) if self.jitter else 0.0
            )
            if due is not None and due <= now:
                try:
                    self.fire(name)
                except Exception as exc:
                    log.warning("scheduler: could not queue crawl of %s: %s", name, exc)
                    continue
                self._last_fired[source_id] = now
                self.fired.append((name, now))
                fired.append(name)
        return fired

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leaksentinel-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")
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
