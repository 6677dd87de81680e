"""Run one crawl of a source as a child process, with a timeout, a lock, and a job record.

Why the parent does the bookkeeping: a run that hangs or crashes must still be recorded as failed, the
cursor must only advance after a run that finished, and two runs of one source must never overlap.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
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

__all__ = ["find_source", "run_crawl"]

SUMMARY_KEYS = ("source", "fetched", "postings", "new", "matches", "alerts", "errors", "seconds")


def find_source(settings: Settings, name_or_id: str) -> Source:
    db = open_database(settings)
    with db.session() as sess:
        query = select(Source).where(Source.name == name_or_id)
        source = sess.scalar(query)
        if source is None and name_or_id.isdigit():
            source = sess.get(Source, int(name_or_id))
        if source is None:
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
    """The same lock across machines (distributed setup): a Redis key with a lease longer than a run."""

    def __init__(self, redis_url: str, source_id: int, lease_s: int) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.key = f"leaksentinel:crawl-lock:{source_id}"
        self.token = f"{os.uname().nodename}:{os.getpid()}:{time.monotonic_ns()}"
        self.lease_s = lease_s

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, ex=self.lease_s))

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
            self.parts.append(RedisSourceLock(settings.redis_url, source_id, int(timeout_s) + 60))
        self.held: list[SourceLock | RedisSourceLock] = []

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


def _record_health(sess: Session, src: Source, summary: dict[str, Any], failed: bool) -> None:
    """Judge the run; a change to unhealthy (or back) becomes an operator event in the same transaction."""
    ever = bool(sess.scalar(select(func.count()).select_from(Posting).where(Posting.source_id == src.id)))
    verdict = assess_run(
        summary,
        failed=failed,
        failures_in_row=src.failures_in_row or 0,
        ever_produced=ever and not summary.get("new"),
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


def run_crawl(
    settings: Settings, name_or_id: str, *, timeout_s: float | None = None, stderr: Any = None
) -> dict[str, Any]:
    """Crawl a source once, now; returns the run summary (the contract's JSON)."""
    source = find_source(settings, name_or_id)
    lock = CrawlLock(settings, source.id, timeout_s or settings.crawl_timeout_s)
    if not lock.acquire():
        raise OperationalError(f"source {source.name} is already being crawled")
    db = open_database(settings)
    try:
        with db.session() as sess:
            job = CrawlJob(source_id=source.id, status="running")
            sess.add(job)
            sess.flush()
            job_id = job.id
        started = time.monotonic()
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "crawlers.run", "--source", str(source.id)]
        summary: dict[str, Any] | None = None
        error: str | None = None
        try:
            proc = subprocess.run(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                timeout=timeout_s or settings.crawl_timeout_s,
                check=False,
            )
            lines = proc.stdout.decode("utf-8", errors="replace").strip().splitlines()
            if lines:
                try:
                    summary = json.loads(lines[-1])
                except ValueError:
                    summary = None
            if proc.returncode != 0 or summary is None:
                error = f"crawl process exited with {proc.returncode}"
        except subprocess.TimeoutExpired:
            error = f"crawl timed out after {timeout_s or settings.crawl_timeout_s} s"
        seconds = round(time.monotonic() - started, 3)
        if summary is None:
            summary = {k: 0 for k in SUMMARY_KEYS} | {"source": source.name, "errors": 1}
        summary["seconds"] = seconds
        failed = error is not None or (summary.get("fetched", 0) == 0 and summary.get("errors", 0) > 0)
        status = "failed" if failed else "ok"
        cursor = summary.pop("cursor", None)
        if error:
            summary["error"] = error
        with db.session() as sess:
            job_row = sess.get(CrawlJob, job_id)
            src = sess.get(Source, source.id)
            if job_row is not None:
                job_row.finished_at = utcnow()
                job_row.status = status
                job_row.stats = summary
                job_row.error = error
            if src is not None:
                src.last_run = utcnow()
                src.last_status = status
                if not failed:
                    src.last_success = src.last_run
                    # A run cut short (page budget, timeout) keeps the old cursor: what it did not
                    # reach is read next time.
                    if isinstance(cursor, dict) and summary.get("finish_reason") == "finished":
                        src.cursor = cursor
                _record_health(sess, src, summary, failed)
        summary["status"] = status
        return summary
    finally:
        lock.release()
