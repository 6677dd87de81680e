"""What `run` logs: each finished crawl and health change once, in order, as text or JSON lines."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from core.db import open_database
from core.models import CrawlJob, OperatorEvent, Source, utcnow
from core.settings import load_settings
from leaksentinel.actions.sources import add_source
from leaksentinel.activity import ActivityLog, JsonFormatter


def _job(sess: object, source_id: int, status: str, **stats: object) -> CrawlJob:
    job = CrawlJob(source_id=source_id, status=status, stats=dict(stats))
    if status != "running":
        job.finished_at = utcnow()
    sess.add(job)  # type: ignore[attr-defined]
    sess.flush()  # type: ignore[attr-defined]
    return job


def test_each_finished_crawl_and_health_change_is_logged_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = open_database(load_settings())
    add_source(db, "pastes", "pastebin", "http://pastes.example")
    with db.session() as sess:
        sid = sess.scalar(select(Source.id).where(Source.name == "pastes"))
        assert sid is not None
        _job(sess, sid, "ok", fetched=1)  # before the log started: not repeated
    activity = ActivityLog(db)
    activity.start()
    activity.stop()
    caplog.set_level(logging.INFO, logger="leaksentinel.activity")
    with db.session() as sess:
        running = _job(sess, sid, "running")
        _job(sess, sid, "ok", fetched=7, postings=6, new=6, matches=87, alerts=3)
        failed = _job(sess, sid, "failed", errors=4)
        failed.error = "Connection was refused by other side: 111: Connection refused."
        sess.add(
            OperatorEvent(
                kind="source.unhealthy", source_id=sid, message="source pastes: down", event_id="e1"
            )
        )
        running_id = running.id
    assert activity.poll() == 3
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "crawl pastes: ok, 7 pages, 6 postings (6 new), 87 matches, 3 alerts",
        "crawl pastes: failed, 0 pages, 0 postings (0 new), 0 matches, 0 alerts; "
        "error: Connection was refused by other side: 111: Connection refused.",
        "source pastes: down",
    ]
    assert caplog.records[1].levelno == logging.WARNING
    caplog.clear()
    assert activity.poll() == 0  # nothing twice
    with db.session() as sess:  # the job that was running ends later: logged then, once
        job = sess.get(CrawlJob, running_id)
        assert job is not None
        job.status, job.error = "interrupted", "interrupted (the service stopped)"
    assert activity.poll() == 1
    assert caplog.records[0].getMessage().startswith("crawl pastes: interrupted")
    assert activity.poll() == 0


def test_json_lines_carry_the_event_fields() -> None:
    record = logging.LogRecord("leaksentinel.activity", logging.INFO, __file__, 1, "crawl x: ok", None, None)
    record.event = {"event": "crawl.finished", "source": "x", "postings": 3}
    line = JsonFormatter().format(record)
    body = json.loads(line)
    assert body["event"] == "crawl.finished" and body["source"] == "x" and body["postings"] == 3
    assert body["message"] == "crawl x: ok" and body["level"] == "info" and "ts" in body
    assert "\n" not in line
