"""``leaksentinel run``: broker, workers, relay, scheduler and HTTP API in one supervised service.

Why one supervisor: on a laptop everything must start with one command and stop, all of it, on
SIGTERM or Ctrl-C within 20 seconds; with server URLs the same parts connect to the shared servers.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import IO

import uvicorn

from alerting.relay import Relay
from core.celery_app import announce_embedded_redis, make_celery
from core.db import open_database
from core.errors import BadInput, OperationalError
from core.redis_embedded import EmbeddedRedis
from core.settings import Settings
from crawlers.job import mark_interrupted
from crawlers.scheduler import RedisLeader, Scheduler
from leaksentinel.actions.deployment import check_hash_key
from leaksentinel.activity import ActivityLog
from leaksentinel.api.app import create_app
from leaksentinel.processes import WorkerProcess

__all__ = ["HomeLock", "Service"]

log = logging.getLogger(__name__)
CRAWL_TASK = "crawlers.crawl"


class HomeLock:
    """One ``run`` per home: a second one would share the embedded broker's files and delete the first's
    ``run/redis.url`` when it stops. The lock is an flock, so a crashed ``run`` never leaves it held."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.run_dir / "service.lock"
        self.home = settings.home
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OperationalError(
                f"another `leaksentinel run` (pid {holder}) is already serving the home {self.home}; "
                "stop it first, or give this one its own LEAKSENTINEL_HOME"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        http: bool = True,
        scheduler: bool = True,
        worker_log: IO[bytes] | None = None,
    ) -> None:
        self.host = host or settings.host
        self.port = port if port is not None else settings.port
        # Workers inherit these settings: links in alerts point where this service listens (or public_url).
        self.settings = settings.with_(host=self.host, port=self.port)
        self.http = http
        self.with_scheduler = scheduler
        self.worker_log = worker_log
        self.redis: EmbeddedRedis | None = None
        self.broker_url = settings.redis_url
        self.worker: WorkerProcess | None = None
        self.relay: Relay | None = None
        self.scheduler: Scheduler | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self.activity: ActivityLog | None = None
        self.home_lock = HomeLock(self.settings)
        self.stopped = threading.Event()

    def start(self) -> Service:
        self.home_lock.acquire()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Service:
        db = open_database(self.settings)
        key = check_hash_key(db, self.settings)  # a machine with another key would match nothing it crawls
        if not key.ok:
            raise BadInput(key.message)
        closed = mark_interrupted(self.settings, reason="interrupted (the service that ran it died)")
        if closed:
            log.warning("%d crawl job(s) left running by a process that died are marked interrupted", closed)
        if not self.broker_url:
            self.redis = EmbeddedRedis(workdir=self.settings.run_dir / "redis")
            self.broker_url = self.redis.start()
            announce_embedded_redis(self.settings, self.broker_url)
        celery = make_celery(self.settings, self.broker_url)
        self.worker = WorkerProcess(self.settings, self.broker_url, log=self.worker_log).start()
        self.relay = Relay(db, celery, self.settings)
        self.relay.start()
        self.activity = ActivityLog(db).start()
        if self.with_scheduler:

            def fire(name: str) -> None:
                celery.send_task(CRAWL_TASK, args=[name], kwargs={"scheduled": True}, queue="crawl")

            self.scheduler = Scheduler(
                db,
                fire,
                tick_s=self.settings.scheduler_tick_s,
                leader=RedisLeader(self.broker_url, ttl_s=max(3.0, 3 * self.settings.scheduler_tick_s)),
                jitter=self.settings.schedule_jitter,
            )
            self.scheduler.start()
        if self.http:
            config = uvicorn.Config(
                create_app(self.settings, celery=celery, queue_depths=self._queue_depths),
                host=self.host,
                port=self.port,
                log_level="warning",
                lifespan="off",
                proxy_headers=True,
            )
            self._server = uvicorn.Server(config)
            # Served from a thread: uvicorn leaves signals to the main thread (serve_forever).
            self._server_thread = threading.Thread(
                target=self._server.run, name="leaksentinel-http", daemon=True
            )
            self._server_thread.start()
            deadline = time.monotonic() + 15
            while not self._server.started and self._server_thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self._server.started:
                raise OperationalError(
                    f"the HTTP API could not listen on {self.host}:{self.port} (port in use?)"
                )
            log.info(
                "serving http://%s:%s (links in alerts: %s; home %s); Ctrl-C stops",
                self.host,
                self.port,
                self.settings.console_url,
                self.settings.home,
            )
        return self

    def _queue_depths(self) -> dict[str, int]:
        """Tasks waiting in the broker's queues (Redis lists named after the queues)."""
        import redis

        try:
            client = redis.Redis.from_url(self.broker_url or "", socket_timeout=1)
            return {q: int(client.llen(q)) for q in ("crawl", "notify")}
        except Exception:
            return {}

    def stop(self) -> None:
        """Stop everything; each part gets a bounded time so the whole stays under 20 s."""
        if self._server is not None:
            self._server.should_exit = True
        if self.scheduler is not None:
            self.scheduler.stop(2)
        if self.relay is not None:
            self.relay.stop(2)
        if self.worker is not None:
            self.worker.stop(8)
        if self.activity is not None:
            self.activity.stop(2)
        if self._server_thread is not None:
            self._server_thread.join(3)
        if self.home_lock.fd is not None:
            # What the stopped worker was crawling is recorded as such, not left `running` forever.
            try:
                mark_interrupted(self.settings)
            except Exception as exc:
                log.warning("could not mark interrupted crawl jobs: %s", exc)
        if self.redis is not None:
            announce_embedded_redis(self.settings, None)
            self.redis.stop(3)
        self.home_lock.release()
        self.stopped.set()

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT."""
        done = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            done.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not done.wait(0.5):
                if self.worker is not None and not self.worker.alive():
                    log.warning("worker exited; restarting it")
                    self.worker.start()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
