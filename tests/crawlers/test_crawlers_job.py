"""A crawl run's bookkeeping: a failed run says why in one line, health follows the configured
threshold, and a run cut by SIGTERM is stored as ``interrupted``, never left ``running``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import open_database
from core.models import CrawlJob, OperatorEvent, Source
from core.redis_embedded import free_port
from core.settings import load_settings
from crawlers.job import first_log_error, mark_interrupted, run_crawl
from leaksentinel.actions.sources import add_source


def test_first_log_error_is_the_reason_in_one_line() -> None:
    log = (
        "2026-01-01 10:00:00 [scrapy.core.engine] INFO: Spider opened\n"
        "2026-01-01 10:00:01 [scrapy.core.scraper] ERROR: Error downloading <GET http://x/>: "
        "Connection was refused by other side: 111: Connection refused.\n"
        "2026-01-01 10:00:02 [scrapy.core.scraper] ERROR: a later error\n"
    )
    assert first_log_error(log) == (
        "Error downloading <GET http://x/>: Connection was refused by other side: 111: Connection refused."
    )
    assert first_log_error("INFO: all fine\n") is None


def test_a_failed_crawl_stores_its_first_error_and_turns_unhealthy_at_the_threshold(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSENTINEL_UNHEALTHY_AFTER_FAILURES", "2")
    settings = load_settings()
    db = open_database(settings)
    dead_port = free_port()  # nothing listens there
    add_source(db, "down", "generic", f"http://127.0.0.1:{dead_port}/", options={"item": "pre"})
    first = run_crawl(settings, "down", stderr=None)
    assert first["status"] == "failed"
    assert "refused" in first["error"].lower() and "\n" not in first["error"]
    with db.session() as sess:
        job = sess.scalars(select(CrawlJob)).one()
        assert job.status == "failed" and job.error == first["error"]
        source = sess.scalar(select(Source).where(Source.name == "down"))
        assert source is not None and source.health != "unhealthy"  # one failure is under the threshold
    run_crawl(settings, "down", stderr=None)
    with db.session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "down"))
        assert source is not None and source.health == "unhealthy"
        assert "refused" in (source.health_reason or "").lower()
        events = sess.scalars(select(OperatorEvent)).all()
        assert [e.kind for e in events] == ["source.unhealthy"]


def test_sigterm_during_a_crawl_stores_the_job_as_interrupted(tmp_path: Path, database_url: str) -> None:
    """`leaksentinel crawl` killed by SIGTERM mid-run (the page never answers)."""
    with socket.socket() as hang:  # accepts the connection, never answers
        hang.bind(("127.0.0.1", 0))
        hang.listen()
        port = hang.getsockname()[1]
        env = {**os.environ}
        subprocess.run(
            [sys.executable, "-m", "leaksentinel", "source", "add", "hang", "--kind", "generic", "--url",
             f"http://127.0.0.1:{port}/", "--item", "pre"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "leaksentinel", "crawl", "hang"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        db = open_database(load_settings())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.session() as sess:
                if sess.scalars(select(CrawlJob).where(CrawlJob.status == "running")).first():
                    break
            time.sleep(0.1)
        time.sleep(1.5)  # the child is connecting
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    with db.session() as sess:
        jobs = sess.scalars(select(CrawlJob)).all()
        assert [j.status for j in jobs] == ["interrupted"]
        source = sess.scalar(select(Source).where(Source.name == "hang"))
        assert source is not None and source.last_status == "interrupted"


def test_mark_interrupted_closes_only_jobs_whose_process_is_gone(database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "a", "generic", "http://a.example/", options={"item": "pre"})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with db.session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "a"))
        assert source is not None
        here = socket.gethostname()
        sess.add(
            CrawlJob(source_id=source.id, status="running", stats={"runner": {"host": here, "pid": gone.pid}})
        )
        sess.add(
            CrawlJob(
                source_id=source.id, status="running", stats={"runner": {"host": here, "pid": os.getpid()}}
            )
        )
        sess.add(
            CrawlJob(source_id=source.id, status="running", stats={"runner": {"host": "other", "pid": 1}})
        )
    assert mark_interrupted(settings) == 1
    with db.session() as sess:
        assert [j.status for j in sess.scalars(select(CrawlJob).order_by(CrawlJob.id))] == [
            "interrupted",
            "running",
            "running",
        ]
