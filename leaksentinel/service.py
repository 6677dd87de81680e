"""The service's parts and the roles built from them: ``run`` (all in one), ``worker``, ``scheduler``, ``serve``.

Why one module: on a laptop everything must start with one command and stop, all of it, on SIGTERM or
Ctrl-C within 20 seconds; in a fleet each machine runs one role made of the very same parts, connected
to the shared servers. A part is started and stopped the same way wherever it runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import IO, Any

import uvicorn

from alerting.relay import Relay
from core import telemetry as process_metrics
from core.celery_app import RUNNING_REDIS_FILE, announce_embedded_redis, make_celery
from core.db import Database, open_database
from core.errors import BadInput, OperationalError
from core.redis_embedded import EmbeddedRedis
from core.settings import Settings
from crawlers.job import mark_interrupted
from crawlers.scheduler import Housekeeping, RedisFiredLog, RedisLeader, Scheduler
from leaksentinel.actions.deployment import check_hash_key
from leaksentinel.activity import ActivityLog
from leaksentinel.api.app import create_app
from leaksentinel.processes import WorkerProcess, stop_all
from leaksentinel.telemetry import Exporter, MetricsDir, make_registry

__all__ = [
    "NO_BROKER",
    "HomeLock",
    "HttpServer",
    "Role",
    "SchedulerRole",
    "ServeRole",
    "Service",
    "WorkerRole",
    "role_broker_url",
]

log = logging.getLogger(__name__)
CRAWL_TASK = "crawlers.crawl"
QUEUES = ("crawl", "notify")
NO_BROKER = "no broker: set redis_url or start `leaksentinel run`"
#: Delivery slots of ``run``'s own notify pool when the settings name none: deliveries are short HTTP
#: posts, so two slots keep up with any crawl load on a laptop.
DEFAULT_NOTIFY_CONCURRENCY = 2


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


def role_broker_url(settings: Settings) -> str:
    """The broker a fleet role uses: the configured Redis, else the one a live ``run`` on this home announced.

    Why refuse rather than wait: a role with no broker would sit idle forever, silently; the operator
    must hear at once that it has nothing to talk to. An announcement left by a ``run`` that died is
    checked with a ping, so a stale file is not mistaken for a broker.
    """
    if settings.redis_url:
        return settings.redis_url
    path = settings.run_dir / RUNNING_REDIS_FILE
    try:
        url = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        url = ""
    if not url:
        raise OperationalError(NO_BROKER)
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError, ValueError):
        raise OperationalError(NO_BROKER) from None
    return url


def open_checked_database(settings: Settings) -> Database:
    """The deployment's database, refusing a machine whose hashing key differs: it would match nothing."""
    db = open_database(settings)
    key = check_hash_key(db, settings)
    if not key.ok:
        raise BadInput(key.message)
    return db


def queue_depths(broker_url: str | None) -> dict[str, int]:
    """Tasks waiting in the broker's queues (Redis lists named after the queues)."""
    import redis

    try:
        client = redis.Redis.from_url(broker_url or "", socket_timeout=1)
        return {q: int(client.llen(q)) for q in QUEUES}
    except Exception:
        return {}


def housekeeping(db: Database, settings: Settings) -> tuple[Housekeeping, ...]:
    """What the scheduler leader runs on its own: the retention purge, daily by default."""
    if settings.purge_every_s <= 0:
        return ()

    def purge_now() -> None:
        from leaksentinel.actions.retention import purge

        counts = purge(db, settings)
        logging.getLogger("leaksentinel.activity").info(
            "purge: %d postings, %d evidence files deleted (%d held by alerts, retention %d days)",
            counts["postings"],
            counts["evidence_files"],
            counts["held_by_alerts"],
            settings.retention_days,
            extra={"event": {"event": "purge", **counts}},
        )

    return (Housekeeping("purge", settings.purge_every_s, purge_now),)


def start_scheduler(db: Database, celery: Any, settings: Settings, broker_url: str) -> Scheduler:
    """The scheduler thread; whichever instance holds the Redis lease fires, so a fleet fires once."""

    def fire(name: str) -> None:
        celery.send_task(CRAWL_TASK, args=[name], kwargs={"scheduled": True}, queue="crawl")
        process_metrics.count_scheduled_crawl(name)

    scheduler = Scheduler(
        db,
        fire,
        tick_s=settings.scheduler_tick_s,
        leader=RedisLeader(broker_url, ttl_s=max(3.0, 3 * settings.scheduler_tick_s)),
        jitter=settings.schedule_jitter,
        fired_log=RedisFiredLog(broker_url),
        housekeeping=housekeeping(db, settings),
    )
    scheduler.start()
    return scheduler


class HttpServer:
    """The API and console, served by uvicorn from a thread (uvicorn leaves signals to the main thread)."""

    def __init__(self, settings: Settings, host: str, port: int, celery: Any, broker_url: str | None) -> None:
        config = uvicorn.Config(
            create_app(settings, celery=celery, queue_depths=lambda: queue_depths(broker_url)),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=True,
        )
        self.host, self.port = host, port
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="leaksentinel-http", daemon=True)

    def start(self) -> HttpServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            raise OperationalError(f"the HTTP API could not listen on {self.host}:{self.port} (port in use?)")
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout_s)


class Role:
    """A supervised set of parts: started together, restarted if a worker dies, stopped within 20 s.

    Subclasses fill the parts in ``_start``; ``stop`` knows how to stop each one, in an order that lets
    nothing new be queued while the workers drain, and records a crawl the stop cut short as
    ``interrupted``.

    Metrics: every role gives its child processes a multiprocess directory (named before they start), and
    with ``metrics_port`` serves them with prometheus_client's own HTTP server; ``metrics_database`` says
    whether that exporter also serves the database's figures (the fleet-wide roles do, workers do not).
    """

    #: The role's name in logs and in its metrics directory.
    role = "role"
    #: Whether this role's exporter also serves the figures read from the shared database.
    metrics_database = True
    #: Whether this role serves ``/metrics`` on its API (then its children count to files even with no exporter).
    metrics_on_api = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker_url: str | None = settings.redis_url or None
        self.workers: list[WorkerProcess] = []
        self.relay: Relay | None = None
        self.scheduler: Scheduler | None = None
        self.activity: ActivityLog | None = None
        self.http: HttpServer | None = None
        self.metrics_dir: MetricsDir | None = None
        self.exporter: Exporter | None = None
        self.stopped = threading.Event()

    @property
    def worker(self) -> WorkerProcess | None:
        """The first worker (the only one of a ``worker`` role): kept for callers of the single-pool days."""
        return self.workers[0] if self.workers else None

    def start(self) -> Role:
        try:
            # Named before any child starts: their figures go to files this role's exporter adds up. A role
            # that exports nothing names none, so its children's figures cost nothing and leave no file.
            if self.settings.metrics_port or self.metrics_on_api:
                self.metrics_dir = MetricsDir(self.settings.run_dir, self.role).create()
            self._start()
            self._start_exporter()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_exporter(self) -> None:
        """The Prometheus exporter on ``metrics_port`` (none when 0): process, queue and database figures."""
        if not self.settings.metrics_port:
            return
        db = open_database(self.settings) if self.metrics_database else None
        registry = make_registry(db=db, queue_depths=self._queue_depths)
        self.exporter = Exporter(registry, self.settings.metrics_host, self.settings.metrics_port).start()

    def _start(self) -> None:
        raise NotImplementedError

    def _queue_depths(self) -> dict[str, int]:
        return queue_depths(self.broker_url)

    def _stop_parts(self) -> None:
        """Each part gets a bounded time; the workers stop together, so the whole stays under 20 s."""
        if self.http is not None:
            self.http.server.should_exit = True
        if self.scheduler is not None:
            self.scheduler.stop(2)
        if self.relay is not None:
            self.relay.stop(2)
        workers, self.workers = self.workers, []
        stop_all(workers, 8)
        if self.activity is not None:
            self.activity.stop(2)
        if self.http is not None:
            self.http.stop(3)
        if workers:
            # What a stopped worker was crawling is recorded as such, not left `running` forever.
            try:
                mark_interrupted(self.settings)
            except Exception as exc:
                log.warning("could not mark interrupted crawl jobs: %s", exc)
        if self.exporter is not None:
            self.exporter.stop(2)
            self.exporter = None
        if self.metrics_dir is not None:
            self.metrics_dir.close()
            self.metrics_dir = None

    def stop(self) -> None:
        self._stop_parts()
        self.stopped.set()

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, restarting a worker that died."""
        done = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            done.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not done.wait(0.5):
                for worker in self.workers:
                    if not worker.alive():
                        log.warning("%s worker exited; restarting it", worker.queues)
                        worker.start()
                if self.metrics_dir is not None:
                    self.metrics_dir.compact_now_and_then()  # even if nobody scrapes, files stay few
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class WorkerRole(Role):
    """``leaksentinel worker``: a Celery worker on the given queues, supervised so SIGTERM stops it in time.

    Its exporter serves what its processes did and the broker's queue depths, not the database's figures:
    a fleet has many workers, and one scrape of the scheduler or the API shows those.
    """

    role = "worker"
    metrics_database = False

    def __init__(
        self,
        settings: Settings,
        *,
        queues: str = "crawl,notify",
        concurrency: int | None = None,
        worker_log: IO[bytes] | None = None,
    ) -> None:
        super().__init__(settings)
        self.queues = queues
        self.concurrency = concurrency
        self.worker_log = worker_log

    def _start(self) -> None:
        self.broker_url = role_broker_url(self.settings)
        open_checked_database(self.settings)
        closed = mark_interrupted(self.settings, reason="interrupted (the worker that ran it died)")
        if closed:
            log.warning("%d crawl job(s) left running by a process that died are marked interrupted", closed)
        self.workers.append(
            WorkerProcess(
                self.settings,
                self.broker_url,
                queues=self.queues,
                concurrency=self.concurrency,
                name=self.queues.replace(",", "-"),
                log=self.worker_log,
            ).start()
        )
        log.info("worker on %s (broker %s)", self.queues, _redacted(self.broker_url))


class SchedulerRole(Role):
    """``leaksentinel scheduler``: fires due crawls (leader-elected) and publishes the outbox."""

    role = "scheduler"

    def _start(self) -> None:
        self.broker_url = role_broker_url(self.settings)
        db = open_checked_database(self.settings)
        celery = make_celery(self.settings, self.broker_url)
        self.relay = Relay(db, celery, self.settings)
        self.relay.start()
        self.activity = ActivityLog(db).start()
        self.scheduler = start_scheduler(db, celery, self.settings, self.broker_url)
        log.info("scheduler and outbox relay (broker %s)", _redacted(self.broker_url))


class ServeRole(Role):
    """``leaksentinel serve``: the API and console only; crawl-now and tips go through the broker.

    Its metrics are the API's ``/metrics`` (with its key check), not a separate exporter.
    """

    role = "serve"
    metrics_on_api = True

    def _start_exporter(self) -> None:
        """None: ``/metrics`` on the API's port is this role's exporter."""

    def __init__(self, settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
        host = host or settings.host
        port = port if port is not None else settings.port
        super().__init__(settings.with_(host=host, port=port))
        self.host, self.port = host, port

    def _start(self) -> None:
        self.broker_url = role_broker_url(self.settings)
        open_checked_database(self.settings)
        celery = make_celery(self.settings, self.broker_url)
        self.http = HttpServer(self.settings, self.host, self.port, celery, self.broker_url).start()
        log.info("serving http://%s:%s (home %s); Ctrl-C stops", self.host, self.port, self.settings.home)


def _redacted(url: str | None) -> str:
    """A broker URL without its password, for logs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url or "")
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@") if url else ""
    return url or ""


class Service(Role):
    """``leaksentinel run``: the embedded broker (unless one is configured), a crawl pool and a separate
    notify pool (so an alert never waits behind a crawl), relay, scheduler, activity log and HTTP API.

    Its ``/metrics`` adds up the figures of both pools; ``metrics_port`` serves the same on its own port.
    """

    role = "run"
    metrics_on_api = True

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
        super().__init__(settings.with_(host=self.host, port=self.port))
        self.with_http = http
        self.with_scheduler = scheduler
        self.worker_log = worker_log
        self.redis: EmbeddedRedis | None = None
        self.home_lock = HomeLock(self.settings)

    def start(self) -> Service:
        self.home_lock.acquire()
        super().start()
        return self

    def _start(self) -> None:
        db = open_checked_database(self.settings)
        closed = mark_interrupted(self.settings, reason="interrupted (the service that ran it died)")
        if closed:
            log.warning("%d crawl job(s) left running by a process that died are marked interrupted", closed)
        if not self.broker_url:
            self.redis = EmbeddedRedis(workdir=self.settings.run_dir / "redis")
            self.broker_url = self.redis.start()
            announce_embedded_redis(self.settings, self.broker_url)
        celery = make_celery(self.settings, self.broker_url)
        notify_concurrency = self.settings.notify_concurrency or DEFAULT_NOTIFY_CONCURRENCY
        for queues, concurrency in (("notify", notify_concurrency), ("crawl", None)):
            self.workers.append(
                WorkerProcess(
                    self.settings,
                    self.broker_url,
                    queues=queues,
                    concurrency=concurrency,
                    name=queues,
                    log=self.worker_log,
                ).start()
            )
        self.relay = Relay(db, celery, self.settings)
        self.relay.start()
        self.activity = ActivityLog(db).start()
        if self.with_scheduler:
            self.scheduler = start_scheduler(db, celery, self.settings, self.broker_url)
        if self.with_http:
            self.http = HttpServer(self.settings, self.host, self.port, celery, self.broker_url).start()
            log.info(
                "serving http://%s:%s (links in alerts: %s; home %s); Ctrl-C stops",
                self.host,
                self.port,
                self.settings.console_url,
                self.settings.home,
            )

    def stop(self) -> None:
        self._stop_parts()
        if self.redis is not None:
            announce_embedded_redis(self.settings, None)
            self.redis.stop(3)
        self.home_lock.release()
        self.stopped.set()
