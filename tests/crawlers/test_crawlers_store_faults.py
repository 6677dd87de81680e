"""No posting lost: real crawls of the simulated paste site while the database misbehaves for real.

- a posting the database refuses (a trigger) fails the run with the reason, and the cursor stays, so the
  next run fetches it again and nothing is stored or alerted twice;
- SQLite's write lock held by another connection past the busy timeout is waited out by the store's
  retries, and a run whose retries run out fails and keeps its cursor;
- on PostgreSQL, the crawl's backend killed with ``pg_terminate_backend`` in the middle of a store is
  retried on a new connection;
- a crawl killed with SIGKILL mid-run leaves a job the next run reclaims as ``interrupted``; that run
  stores the rest once, and the postings the killed run stored reach the candidate index;
- the Redis lease of a crawl is renewed by its heartbeat while it runs, and lapses within the lease once
  the process is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Alert, CrawlJob, Posting, Source
from core.redis_embedded import EmbeddedRedis
from core.search import open_backend
from core.settings import Settings, load_settings
from crawlers.extensions.progress import ENV as PROGRESS_ENV
from crawlers.extensions.progress import read_progress
from crawlers.job import mark_interrupted, run_crawl
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from leaksentinel.sim import Underground, company_csv
from pipelines.detection.candidates import CandidateIndex, unpack_prefixes
from pipelines.leaklock import PAUSE_ENV

ROOT = Path(__file__).resolve().parents[2]


def _wait(predicate: Callable[[], Any], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def _crawl_a_page_that_never_answers(hang: socket.socket) -> tuple[Settings, Any, subprocess.Popen[bytes]]:
    """Source ``hang`` on a listening socket that never answers, and ``leaksentinel crawl hang`` started on it
    in a session of its own (kill the group to end it)."""
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "hang", "generic", f"http://127.0.0.1:{hang.getsockname()[1]}/", options={"item": "pre"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "leaksentinel", "crawl", "hang"],
        cwd=ROOT,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return settings, db, proc


def _world(tmp_path: Path, site: Underground, delay: float | None = None) -> Settings:
    """The demo company registered, and the paste site added as source ``pastes``."""
    settings = load_settings()
    db = open_database(settings)
    company = site.company
    add_tenant(db, company.name, [company.domain], [company.region])
    csv_path = tmp_path / "company.csv"
    csv_path.write_text(company_csv(company), encoding="utf-8")
    key = load_or_create_key(settings.key_path)
    hashed = tmp_path / "company.jsonl"
    rows = hash_csv(csv_path, key, key_column="id", region=company.region)
    hashed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, company.name, hashed)
    add_source(db, "pastes", "pastebin", site.base_url, options={"delay": delay} if delay else None)
    return settings


def _leaks(site: Underground) -> int:
    """How many leaks the site holds (a repost belongs to its leak)."""
    return len({frozenset(p.leaked_keys) for p in site.pastes if p.leaked_keys})


def _counts(settings: Settings) -> tuple[int, int, int]:
    with open_database(settings).session() as sess:
        postings = sess.scalar(select(func.count()).select_from(Posting)) or 0
        urls = sess.scalar(select(func.count(func.distinct(Posting.url)))) or 0
        alerts = sess.scalar(select(func.count()).select_from(Alert)) or 0
    return postings, urls, alerts


def _cursor(settings: Settings) -> Any:
    with open_database(settings).session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "pastes"))
        assert source is not None
        return source.cursor


def _jobs(settings: Settings) -> list[CrawlJob]:
    with open_database(settings).session() as sess:
        return list(sess.scalars(select(CrawlJob).order_by(CrawlJob.id)))


def _refuse_url(settings: Settings, fragment: str, *, on: bool) -> None:
    """A trigger that makes the database refuse to store one posting (what a full disk or a bad row does)."""
    db = open_database(settings)
    with db.engine.begin() as conn:
        if db.is_sqlite:
            if on:
                conn.exec_driver_sql(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON postings "
                    f"WHEN NEW.url LIKE '%{fragment}' "
                    "BEGIN SELECT RAISE(ABORT, 'simulated: the database refused this row'); END"
                )
            else:
                conn.exec_driver_sql("DROP TRIGGER refuse_one")
        elif on:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.url LIKE '%%{fragment}' THEN "  # %% : the driver formats the statement
                "RAISE EXCEPTION 'simulated: the database refused this row'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON postings FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse_one ON postings")


def test_a_posting_that_cannot_be_stored_fails_the_run_and_the_cursor_stays(
    tmp_path: Path, database_url: str
) -> None:
    with Underground(seed=11) as site:
        settings = _world(tmp_path, site)
        refused = [p for p in site.pastes if p.leaked_keys][1]
        before = _cursor(settings)
        _refuse_url(settings, f"/{refused.key}", on=True)
        first = run_crawl(settings, "pastes")
        assert first["status"] == "failed", json.dumps(first)
        assert first["store_failed"] >= 1
        assert "could not be stored" in first["error"] and refused.key in first["error"]
        assert "refused this row" in first["error"]
        job = _jobs(settings)[-1]
        assert job.status == "failed" and job.error == first["error"]
        assert _cursor(settings) == before  # the next run reads the listing from where it was
        with open_database(settings).session() as sess:
            assert sess.scalar(select(Posting).where(Posting.url.like(f"%/{refused.key}"))) is None

        _refuse_url(settings, f"/{refused.key}", on=False)  # the database recovers
        second = run_crawl(settings, "pastes")
        assert second["status"] == "ok", second
        postings, urls, alerts = _counts(settings)
        assert postings == urls == len(site.pastes)  # every paste once, the refused one included
        assert alerts == _leaks(site)  # nothing alerted twice
        assert _cursor(settings)["date"] == max(p.date for p in site.pastes)
        assert run_crawl(settings, "pastes")["new"] == 0


def _rename_hashes(settings: Settings, away: bool) -> None:
    """Make the registered hashes unreadable (or readable again): detection's database read fails."""
    names = ("record_hashes", "record_hashes_away") if away else ("record_hashes_away", "record_hashes")
    with open_database(settings).engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {names[0]} RENAME TO {names[1]}")


def test_a_posting_lost_before_the_store_stage_also_fails_the_run(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detection reads the registered hashes from the database; when that read fails for good, no
    posting is silently dropped: the run fails with the reason and the cursor stays."""
    progress = tmp_path / "progress.json"
    monkeypatch.setenv(PROGRESS_ENV, str(progress))
    with Underground(seed=11) as site:
        settings = _world(tmp_path, site, delay=0.2)
        before = _cursor(settings)
        # Unreadable from the start: the crawl cannot even open its pipelines.
        _rename_hashes(settings, away=True)
        first = run_crawl(settings, "pastes")
        _rename_hashes(settings, away=False)
        assert first["status"] == "failed", json.dumps(first)
        assert "did not run" in first["error"] and "record_hashes" in first["error"]
        assert _cursor(settings) == before
        # Unreadable from the middle of the crawl: the postings being detected then are lost to this run.
        thread, out = _crawl_in_thread(settings, tmp_path / "crawl.log")
        assert _wait(lambda: (read_progress(progress) or {}).get("postings", 0) >= 1, 60)
        _rename_hashes(settings, away=True)
        thread.join(120)
        _rename_hashes(settings, away=False)
        second = out["summary"]
        assert second["status"] == "failed", json.dumps(second)
        assert "could not be processed" in second["error"] and "record_hashes" in second["error"]
        assert _cursor(settings) == before
        third = run_crawl(settings, "pastes")
        assert third["status"] == "ok", third
        postings, urls, alerts = _counts(settings)
        assert postings == urls == len(site.pastes) and alerts == _leaks(site)


def _crawl_in_thread(settings: Settings, log: Path) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        with log.open("wb") as stderr:
            out["summary"] = run_crawl(settings, "pastes", stderr=stderr)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def _hold_sqlite_write_lock(settings: Settings, until: Callable[[], bool], at_most_s: float) -> float:
    """BEGIN IMMEDIATE on another connection (as another process's long write would), until `until()`."""
    import sqlite3

    path = make_url(settings.effective_database_url).database
    conn = sqlite3.connect(str(path), timeout=20, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        _wait(until, at_most_s)
        held = time.monotonic() - started
        conn.execute("COMMIT")
        return held
    finally:
        conn.close()


@pytest.mark.sqlite_only("SQLite's write lock; PostgreSQL's connection loss is the test below")
def test_sqlite_write_lock_held_past_the_busy_timeout_is_retried(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSENTINEL_SQLITE_BUSY_TIMEOUT_MS", "200")
    progress = tmp_path / "progress.json"
    monkeypatch.setenv(PROGRESS_ENV, str(progress))
    with Underground(seed=11) as site:
        settings = _world(tmp_path, site, delay=0.15)
        log = tmp_path / "crawl.log"
        thread, out = _crawl_in_thread(settings, log)
        assert _wait(lambda: (read_progress(progress) or {}).get("postings", 0) >= 2, 60)
        held = _hold_sqlite_write_lock(settings, lambda: False, 1.5)  # 7 busy timeouts long
        thread.join(120)
        summary = out["summary"]
        assert held >= 1.5
        assert summary["status"] == "ok", summary
        assert "transient database error" in log.read_text(errors="replace")  # it did wait it out
        postings, urls, alerts = _counts(settings)
        assert postings == urls == len(site.pastes) and alerts == _leaks(site)


@pytest.mark.sqlite_only("SQLite's write lock; the trigger test covers a refused store on PostgreSQL")
def test_a_store_whose_retries_run_out_fails_the_run_and_the_next_run_completes(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSENTINEL_SQLITE_BUSY_TIMEOUT_MS", "200")
    monkeypatch.setenv("LEAKSENTINEL_DB_RETRY_ATTEMPTS", "2")
    progress = tmp_path / "progress.json"
    monkeypatch.setenv(PROGRESS_ENV, str(progress))
    with Underground(seed=11) as site:
        settings = _world(tmp_path, site, delay=0.15)
        before = _cursor(settings)
        thread, out = _crawl_in_thread(settings, tmp_path / "crawl.log")
        assert _wait(lambda: (read_progress(progress) or {}).get("postings", 0) >= 2, 60)
        # Held until the run has given up on a posting (its error is counted), then released.
        _hold_sqlite_write_lock(settings, lambda: (read_progress(progress) or {}).get("errors", 0) >= 1, 30)
        thread.join(120)
        first = out["summary"]
        assert first["status"] == "failed", json.dumps(first)
        assert re.search(r"could not be (stored|processed)", first["error"]), first["error"]
        assert "database is locked" in first["error"]
        assert _cursor(settings) == before
        stored_first, _, _ = _counts(settings)
        assert stored_first < len(site.pastes)

        monkeypatch.delenv("LEAKSENTINEL_DB_RETRY_ATTEMPTS")
        second = run_crawl(settings, "pastes")
        assert second["status"] == "ok", second
        postings, urls, alerts = _counts(settings)
        assert postings == urls == len(site.pastes) and alerts == _leaks(site)
        assert second["new"] == len(site.pastes) - stored_first


def test_postgres_backend_terminated_mid_store_is_retried(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, db_backend: str
) -> None:
    if db_backend != "postgres":
        pytest.skip("pg_terminate_backend is PostgreSQL's; SQLite's transient fault is the write lock above")
    import psycopg

    monkeypatch.setenv(PAUSE_ENV, "0.3")  # each alert decision stays open 0.3 s: time to kill its backend
    with Underground(seed=11) as site:
        settings = _world(tmp_path, site)
        libpq = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        killed: list[int] = []
        stop = threading.Event()

        def killer() -> None:
            with psycopg.connect(libpq, autocommit=True) as conn:
                while not stop.is_set() and len(killed) < 2:
                    rows = conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state = 'idle in transaction' "
                        "AND query LIKE '%posting_bands%'"
                    ).fetchall()
                    for (pid,) in rows[:1]:
                        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        killed.append(pid)
                        time.sleep(0.5)
                    time.sleep(0.01)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        log = tmp_path / "crawl.log"
        try:
            with log.open("wb") as stderr:
                summary = run_crawl(settings, "pastes", stderr=stderr)
        finally:
            stop.set()
            thread.join(10)
        assert len(killed) == 2, "the crawl's store transaction was never caught open"
        assert summary["status"] == "ok", summary
        assert "transient database error" in log.read_text(errors="replace")
        postings, urls, alerts = _counts(settings)
        assert postings == urls == len(site.pastes) and alerts == _leaks(site)


def test_a_crawl_killed_mid_run_resumes_without_loss_or_duplicate(tmp_path: Path, database_url: str) -> None:
    with Underground(seed=11) as site:
        settings = _world(tmp_path, site, delay=0.3)
        proc = subprocess.Popen(
            [sys.executable, "-m", "leaksentinel", "crawl", "pastes"],
            cwd=ROOT,
            env={**os.environ},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert _wait(lambda: _counts(settings)[0] >= 3, 90, step=0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the crawl command and its Scrapy child, no cleanup
            proc.wait(10)
        stored_by_killed = _counts(settings)[0]
        assert 3 <= stored_by_killed < len(site.pastes)
        assert [j.status for j in _jobs(settings)] == ["running"]

        summary = run_crawl(settings, "pastes")
        assert summary["status"] == "ok", summary
        jobs = _jobs(settings)
        assert [j.status for j in jobs] == ["interrupted", "ok"]
        assert "reclaimed" in (jobs[0].error or "")
        postings, urls, alerts = _counts(settings)
        assert postings == urls == len(site.pastes)  # none lost, none twice
        assert alerts == _leaks(site)
        assert summary["new"] == len(site.pastes) - stored_by_killed
        # Every stored posting, including those of the killed run, is in the candidate index that
        # retro-match reads.
        index = CandidateIndex(settings.index_dir / "candidates")
        with open_database(settings).session() as sess:
            rows = sess.execute(select(Posting.id, Posting.candidate_hashes)).all()
        with_hashes = [(pid, blob) for pid, blob in rows if blob]
        assert len(with_hashes) >= _leaks(site)
        for pid, blob in with_hashes:
            assert pid in index.postings_with(unpack_prefixes(blob)), pid
        # ... and analysts' search holds each posting once.
        backend = open_backend(settings)
        try:
            assert backend.count() == len(site.pastes)
        finally:
            backend.close()


@pytest.mark.sqlite_only("the lease lives in Redis; the database side is the killed-crawl test above")
def test_the_crawl_lease_is_renewed_while_it_runs_and_lapses_once_killed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    monkeypatch.setenv("LEAKSENTINEL_CRAWL_LEASE_S", "1.5")
    with EmbeddedRedis() as broker, socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen()  # accepts the connection, never answers: the crawl runs until killed
        monkeypatch.setenv("LEAKSENTINEL_REDIS_URL", broker.url)
        monkeypatch.setenv(
            "LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", "true"
        )  # a Redis URL alone would forbid loopback
        settings, db, proc = _crawl_a_page_that_never_answers(hang)
        client = redis.Redis.from_url(broker.url)
        key = "leaksentinel:crawl-lock:1"
        try:
            assert _wait(lambda: client.exists(key), 60)
            assert 0 < client.pttl(key) <= 1500
            time.sleep(3.0)  # twice the lease: only the heartbeat keeps it
            assert client.exists(key)
            with db.session() as sess:
                beat = sess.scalars(select(CrawlJob)).one().stats["heartbeat"]
            assert time.time() - beat < 1.5
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        killed_at = time.monotonic()
        assert _wait(lambda: not client.exists(key), 5)
        assert time.monotonic() - killed_at <= 1.5 + 0.5
        # The next run takes the source at once and closes the dead run's job.
        summary = run_crawl(settings, "hang", timeout_s=2)
        assert summary["status"] == "failed"  # the page never answers
        assert [j.status for j in _jobs(settings)] == ["interrupted", "failed"]


def test_mark_interrupted_closes_a_job_whose_heartbeat_stopped_on_any_machine(database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "a", "generic", "http://a.example/", options={"item": "pre"})
    now = time.time()
    with db.session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "a"))
        assert source is not None
        for beat in (now - 600, now):
            runner = {"host": "another-machine", "pid": 1}
            sess.add(
                CrawlJob(source_id=source.id, status="running", stats={"runner": runner, "heartbeat": beat})
            )
    assert mark_interrupted(settings) == 1
    with db.session() as sess:
        assert [j.status for j in sess.scalars(select(CrawlJob).order_by(CrawlJob.id))] == [
            "interrupted",
            "running",
        ]
        assert sess.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.sqlite_only("process bookkeeping only; the database side is the killed-crawl test above")
def test_a_crawl_whose_parent_is_killed_stops_instead_of_running_on_unleased(
    tmp_path: Path, database_url: str
) -> None:
    import psutil

    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen()
        _settings, _db, proc = _crawl_a_page_that_never_answers(hang)
        try:
            parent = psutil.Process(proc.pid)

            def crawl_child() -> psutil.Process | None:
                for c in parent.children():
                    try:  # a short-lived helper process may be gone between listing and reading it
                        if "crawlers.run" in " ".join(c.cmdline()):
                            return c
                    except psutil.Error:
                        continue
                return None

            assert _wait(lambda: crawl_child() is not None, 60)
            child = crawl_child()
            assert child is not None
            proc.kill()  # the parent only: its Scrapy child is orphaned
            proc.wait(10)
            killed_at = time.monotonic()

            def gone() -> bool:
                try:
                    return not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    return True

            assert _wait(gone, 25)
            assert time.monotonic() - killed_at < 20
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
