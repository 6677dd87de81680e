"""Run one crawl of a source as a child process, with a timeout, a lock, and a job record.

Why the parent does the bookkeeping: a run that hangs or crashes must still be recorded as failed, the
cursor must only advance after a run that finished and stored every posting it read, and two runs of
one source must never overlap.

Why a heartbeat: a run killed outright (kill -9, a machine lost) cannot clean up. Its Redis lease is
short (``LEAKSENTINEL_CRAWL_LEASE_S``, 30 s) and renewed by the running parent, so it lapses within
the lease once the parent is gone; its job row carries a heartbeat time, so a job no process beats for
is closed as ``interrupted`` (by the next run of the source, or ``mark_interrupted``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import open_database
from core.errors import NotFound, OperationalError
from core.models import CrawlJob, OperatorEvent, Posting, Source, utcnow
from core.settings import Settings, settings_env
from crawlers.health import assess_run

__all__ = ["Interrupted", "find_source", "first_log_error", "mark_interrupted", "run_crawl"]

SUMMARY_KEYS = ("source", "fetched", "postings", "new", "matches", "alerts", "errors", "seconds")

log = logging.getLogger(__name__)


def lease_s() -> float:
    """Seconds a crawl's Redis lease lives without renewal (the parent renews it every third of that)."""
    try:
        value = float(os.environ.get("LEAKSENTINEL_CRAWL_LEASE_S", ""))
    except ValueError:
        return 30.0
    return value if value > 0 else 30.0


def stale_after_s() -> float:
    """A running job whose heartbeat is older than this belongs to a process that is gone."""
    return 2 * lease_s()


def find_source(settings: Settings, name_or_id: str) -> Source:
    db = open_database(settings)
    with db.session() as sess:
        if "\x00" in name_or_id or len(name_or_id) > 256:  # PostgreSQL refuses NUL in text
            raise NotFound(f"unknown source: {name_or_id[:64]!r}")
        query = select(Source).where(Source.name == name_or_id)
        source = sess.scalar(query)
        if source is None and name_or_id.isascii() and name_or_id.isdigit() and len(name_or_id) <= 10:
            number = int(name_or_id)
            source = sess.get(Source, number) if 0 < number < 2**31 else None
        # A removed source stays as a row (its postings name it) but is never crawled again, even by a
        # task queued before its removal.
        if source is None or (source.options or {}).get("removed"):
            raise NotFound(f"unknown source: {name_or_id}")
        sess.expunge(source)
        return source


class SourceLock:
    """An exclusive, non-blocking per-source lock (a file lock in the home's run directory)."""

    def __init__(self, run_dir: Path, source_id: int) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / f"crawl-{source_id}.lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class RedisSourceLock:
    """The same lock across machines (distributed setup): a Redis key with a short lease that the
    running parent renews (``renew``); when the parent dies, the lease lapses within ``lease_s``."""

    def __init__(self, redis_url: str, source_id: int, lease_s: float) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.key = f"leaksentinel:crawl-lock:{source_id}"
        self.token = f"{os.uname().nodename}:{os.getpid()}:{time.monotonic_ns()}"
        self.lease_ms = max(1, int(lease_s * 1000))

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.lease_ms))

    def renew(self) -> bool:
        """Extend our own lease (compare-and-expire, atomic in Redis); False if it is no longer ours."""
        renewed = self.client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0",
            1,
            self.key,
            self.token,
            str(self.lease_ms),
        )
        if renewed:
            return True
        # Lapsed (the process stalled past the lease): take it back unless another run holds it now.
        return bool(self.client.set(self.key, self.token, nx=True, px=self.lease_ms))

    def release(self) -> None:
        # Delete only our own lease (a compare-and-delete, atomic in Redis).
        self.client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
            1,
            self.key,
            self.token,
        )


class CrawlLock:
    """A file lock on this machine, plus a Redis lease when several machines share a Redis."""

    def __init__(self, settings: Settings, source_id: int, timeout_s: float) -> None:
        self.parts: list[SourceLock | RedisSourceLock] = [SourceLock(settings.run_dir, source_id)]
        if settings.redis_url:
            self.parts.append(RedisSourceLock(settings.redis_url, source_id, lease_s()))
        self.held: list[SourceLock | RedisSourceLock] = []

    @property
    def fleet_wide(self) -> bool:
        """Whether holding this lock excludes every other run of the source, on any machine."""
        return len(self.parts) > 1

    def renew(self) -> None:
        """Keep the Redis lease alive (called by the heartbeat)."""
        for part in self.held:
            if isinstance(part, RedisSourceLock):
                try:
                    if not part.renew():
                        log.error("the crawl lease %s was lost (expired or taken over)", part.key)
                except Exception as exc:  # Redis unreachable: try again at the next beat
                    log.warning("could not renew the crawl lease %s: %s", part.key, exc)

    def acquire(self) -> bool:
        for part in self.parts:
            if not part.acquire():
                self.release()
                return False
            self.held.append(part)
        return True

    def release(self) -> None:
        while self.held:
            self.held.pop().release()


def _record_health(sess: Session, src: Source, summary: dict[str, Any], failed: bool, threshold: int) -> None:
    """Judge the run; a change to unhealthy (or back) becomes an operator event in the same transaction."""
    ever = bool(sess.scalar(select(func.count()).select_from(Posting).where(Posting.source_id == src.id)))
    verdict = assess_run(
        summary,
        failed=failed,
        failures_in_row=src.failures_in_row or 0,
        ever_produced=ever and not summary.get("new"),
        failures_before_unhealthy=threshold,
    )
    before = src.health
    src.failures_in_row = verdict.failures_in_row
    if verdict.health == "unhealthy" or before != "unhealthy":
        src.health, src.health_reason = verdict.health, verdict.reason
    elif not failed:  # an unhealthy source that succeeds again has recovered
        src.health, src.health_reason = "healthy", None
    if src.health != before and (src.health == "unhealthy" or before == "unhealthy"):
        kind = "source.unhealthy" if src.health == "unhealthy" else "source.recovered"
        message = f"source {src.name} ({src.kind}): " + (src.health_reason or "recovered")
        sess.add(OperatorEvent(kind=kind, source_id=src.id, message=message, event_id=str(uuid.uuid4())))


class Interrupted(BaseException):
    """SIGTERM arrived during a run (raised from the signal handler; a BaseException so nothing swallows it)."""


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_LOG_ERROR = re.compile(r"\b(?:ERROR|CRITICAL):\s*(.*)$")


def first_log_error(log_text: str) -> str | None:
    """The first ERROR line of a run's Scrapy log, without its timestamp and logger (a reason in one line)."""
    for line in log_text.splitlines():
        match = _LOG_ERROR.search(line)
        if match and match.group(1).strip():
            return _one_line(match.group(1))
    return None


def runner_id() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(job: CrawlJob, me: str, now: float) -> bool:
    """Whether a ``running`` job's process is gone: it ran here and its pid is dead, or (on any machine)
    its heartbeat stopped ``stale_after_s`` ago."""
    stats = job.stats or {}
    runner = stats.get("runner") or {}
    if runner.get("host") == me and not _pid_alive(int(runner.get("pid") or 0)):
        return True
    beat = stats.get("heartbeat")
    return isinstance(beat, int | float) and now - float(beat) > stale_after_s()


def _close_job(sess: Session, job: CrawlJob, reason: str) -> None:
    job.status, job.error, job.finished_at = "interrupted", reason, utcnow()
    src = sess.get(Source, job.source_id)
    if src is not None:
        src.last_status = "interrupted"


def mark_interrupted(settings: Settings, *, reason: str = "interrupted (the service stopped)") -> int:
    """Jobs left ``running`` by a process that no longer exists become ``interrupted``.

    Why by runner and heartbeat: a job records the host and pid of the process that runs it and the time
    of its last heartbeat, so a service stopping (or starting after a crash) closes what died here, and
    a job whose heartbeat stopped (its machine died) is closed from anywhere — never a live job.
    """
    db = open_database(settings)
    me = socket.gethostname()
    now = time.time()
    closed = 0
    with db.session() as sess:
        for job in sess.scalars(select(CrawlJob).where(CrawlJob.status == "running")).all():
            if _is_stale(job, me, now):
                _close_job(sess, job, reason)
                closed += 1
    return closed


def _reclaim_source_jobs(settings: Settings, source_id: int, fleet_wide: bool) -> int:
    """Close jobs left ``running`` by dead runs (called while holding the source's lock).

    With a lock that excludes every other run of the source (one home, or a Redis lease), any other
    ``running`` job of this source is dead by definition; otherwise, and for other sources, only jobs
    whose process is gone or whose heartbeat stopped are closed. Every run doing this means a dead job
    is closed by the next crawl of anything, not only at the next start of the service."""
    db = open_database(settings)
    me = socket.gethostname()
    now = time.time()

    def reclaim(sess: Session) -> int:
        closed = 0
        for job in sess.scalars(select(CrawlJob).where(CrawlJob.status == "running")).all():
            mine = job.source_id == source_id
            if (mine and fleet_wide) or _is_stale(job, me, now):
                reason = "reclaimed by the next run" if mine else "its heartbeat stopped"
                _close_job(sess, job, f"interrupted (its crawl process died; {reason})")
                closed += 1
        return closed

    return db.run(reclaim, what="reclaiming dead crawl jobs")


class Heartbeat:
    """While a run lasts: renews its Redis lease and stamps its job row, every third of the lease.

    Two threads, so a slow database (retries during an outage) never delays the lease's renewal. It
    starts as soon as the lock is held (the job row comes later: ``job_id`` is set when it exists)."""

    def __init__(self, settings: Settings, lock: CrawlLock) -> None:
        self.settings = settings
        self.lock = lock
        self.job_id: int | None = None
        self.stopped = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(self.lock.renew,), name="crawl-lease", daemon=True),
            threading.Thread(target=self._loop, args=(self._stamp,), name="crawl-heartbeat", daemon=True),
        ]

    def start(self) -> Heartbeat:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _loop(self, beat: Any) -> None:
        interval = lease_s() / 3
        while not self.stopped.wait(interval):
            try:
                beat()
            except Exception as exc:  # Redis or the database down for now: the next beat tries again
                log.warning("crawl heartbeat: %s", exc)

    def _stamp(self) -> None:
        job_id = self.job_id
        if job_id is None:
            return

        def stamp(sess: Session) -> None:
            job = sess.get(CrawlJob, job_id)
            if job is not None and job.status == "running":
                job.stats = {**(job.stats or {}), "heartbeat": time.time()}

        with open_database(self.settings).session() as sess:  # one attempt: the next beat is the retry
            stamp(sess)


def _stderr_target(stderr: Any) -> tuple[Any, Any]:
    """Where the child's log goes: the caller's stream, or a temporary file read back for the first error."""
    if stderr is not None:
        return stderr, None
    log_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by run_crawl once the first error is read
    return log_file, log_file


def run_crawl(
    settings: Settings, name_or_id: str, *, timeout_s: float | None = None, stderr: Any = None
) -> dict[str, Any]:
    """Crawl a source once, now; returns the run summary (the contract's JSON).

    A failed run stores its first error in one line on the job (``error``); the source's health follows
    ``unhealthy_after_failures``. SIGTERM during the run stores it as ``interrupted`` and re-raises.
    """
    source = find_source(settings, name_or_id)
    lock = CrawlLock(settings, source.id, timeout_s or settings.crawl_timeout_s)
    if not lock.acquire():
        raise OperationalError(f"source {source.name} is already being crawled")
    heartbeat = Heartbeat(settings, lock).start()
    db = open_database(settings)
    job_id: int | None = None
    previous_handler: Any = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum: int, _frame: Any) -> None:
            raise Interrupted(f"signal {signum}")

        previous_handler = signal.signal(signal.SIGTERM, on_term)
    try:
        _reclaim_source_jobs(settings, source.id, lock.fleet_wide or db.is_sqlite)

        def create_job(sess: Session) -> int:
            job = CrawlJob(
                source_id=source.id, status="running", stats={"runner": runner_id(), "heartbeat": time.time()}
            )
            sess.add(job)
            sess.flush()
            return job.id

        job_id = heartbeat.job_id = db.run(create_job, what="recording the crawl job")
        started = time.monotonic()
        env = {
            **os.environ,
            **settings_env(settings),
            "PYTHONUNBUFFERED": "1",
            "LEAKSENTINEL_CRAWL_PARENT_PID": str(os.getpid()),  # the run stops if this process dies
        }
        cmd = [sys.executable, "-m", "crawlers.run", "--source", str(source.id)]
        summary: dict[str, Any] | None = None
        error: str | None = None
        child_stderr, log_file = _stderr_target(stderr)
        limit = timeout_s or settings.crawl_timeout_s
        try:
            proc = subprocess.run(
                cmd, env=env, stdout=subprocess.PIPE, stderr=child_stderr, timeout=limit, check=False
            )
            lines = proc.stdout.decode("utf-8", errors="replace").strip().splitlines()
            if lines:
                try:
                    summary = json.loads(lines[-1])
                except ValueError:
                    summary = None
            if proc.returncode != 0 or summary is None:
                error = (summary or {}).get("error") or f"crawl process exited with {proc.returncode}"
        except subprocess.TimeoutExpired:
            error = f"crawl timed out after {limit} s"
        seconds = round(time.monotonic() - started, 3)
        if summary is None:
            summary = {k: 0 for k in SUMMARY_KEYS} | {"source": source.name, "errors": 1}
        summary["seconds"] = seconds
        failed = (
            error is not None
            or (summary.get("fetched", 0) == 0 and summary.get("errors", 0) > 0)
            # Everything it read led where the network guard refused to go (a tip that only redirects
            # to an internal address): nothing was read, and the operator should see why.
            or (summary.get("blocked", 0) > 0 and summary.get("postings", 0) == 0)
            # The site answered, but only to refuse us (not whitelisted): nothing was read.
            or (summary.get("refused", 0) > 0 and summary.get("postings", 0) == 0)
            # A posting it read could not be stored: the run failed, and the cursor stays before it.
            or summary.get("store_failed", 0) > 0
        )
        status = "failed" if failed else "ok"
        if failed and not error:
            error = summary.get("error")
        if failed and log_file is not None:
            log_file.seek(0)
            logged = first_log_error(log_file.read(4_000_000).decode("utf-8", errors="replace"))
            if logged and (not error or error.startswith("crawl process exited")):
                error = logged
        if failed and not error:
            error = f"{summary.get('errors', 0)} errors and no page fetched"
        if log_file is not None:
            log_file.close()
        cursor = summary.pop("cursor", None)
        if error:
            error = _one_line(str(error))
            summary["error"] = error
        heartbeat.stop()

        def finish(sess: Session) -> None:
            job_row = sess.get(CrawlJob, job_id)
            src = sess.get(Source, source.id)
            if job_row is not None:
                job_row.finished_at = utcnow()
                job_row.status = status
                job_row.stats = summary
                job_row.error = error if failed else None
            if src is not None:
                src.last_run = utcnow()
                src.last_status = status
                if not failed:
                    src.last_success = src.last_run
                    # A run cut short (page budget, timeout) keeps the old cursor: what it did not
                    # reach is read next time.
                    if isinstance(cursor, dict) and summary.get("finish_reason") == "finished":
                        src.cursor = cursor
                _record_health(sess, src, summary, failed, settings.unhealthy_after_failures)

        db.run(finish, what="recording the crawl's outcome")
        summary["status"] = status
        return summary
    except (Interrupted, KeyboardInterrupt):
        if job_id is not None:
            with db.session() as sess:
                job_row = sess.get(CrawlJob, job_id)
                if job_row is not None and job_row.status == "running":
                    job_row.status, job_row.finished_at = "interrupted", utcnow()
                    job_row.error = "interrupted (SIGTERM or Ctrl-C during the run)"
                src = sess.get(Source, source.id)
                if src is not None:
                    src.last_status = "interrupted"
        raise
    finally:
        heartbeat.stop()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        lock.release()
