"""A crawl stores its postings in batches (pipelines.store.store_postings, StorePipeline.process_item).

What a batch must not change is tested in test_pipelines_store_fast.py (the same rows as one posting at a
time); here: a posting that cannot be stored fails alone, a database that is away fails the batch at once,
the pipeline parks postings until their batch is stored (by count, by bytes, by time), and the batch's
leak-decision locks are all held before its first posting is decided.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import DropItem
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

import pipelines.store as store_module
from core.db import open_database
from core.models import Posting
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from leaksentinel.actions.sources import add_source
from pipelines.detection.engine import Finding
from pipelines.leaklock import leak_lock_keys, lock_leak_decisions_many
from pipelines.store import StorePipeline, StoreResult, store_postings


def _home(database_url: str) -> tuple[Settings, Any]:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "pastes", "pastebin", "http://127.0.0.1:1/")
    return settings, db


def _draft(i: int, source: str = "pastes") -> PostingDraft:
    body = f"posting {i}\n" + f"line {i} of nothing in particular\n" * 20
    draft = PostingDraft(source=source, url=f"http://127.0.0.1:1/raw/{i}", raw=body.encode(), text=body)
    draft.content_hash = f"{i:064x}"
    return draft


def _stored(db: Any) -> int:
    with db.session() as sess:
        return int(sess.scalar(select(func.count()).select_from(Posting)) or 0)


def test_a_posting_that_cannot_be_stored_fails_alone(tmp_path: Path, database_url: str) -> None:
    settings, db = _home(database_url)
    drafts = [_draft(1), _draft(2, source="removed-while-crawling"), _draft(3)]
    results = store_postings(db, settings, drafts)
    assert isinstance(results[0], StoreResult) and results[0].new
    assert isinstance(results[1], LookupError) and "removed-while-crawling" in str(results[1])
    assert isinstance(results[2], StoreResult) and results[2].new
    assert _stored(db) == 2


def test_a_database_that_is_away_fails_the_batch_without_trying_each_posting(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch was already retried (Database.run): storing each posting alone would wait out the same
    outage once per posting."""
    settings, db = _home(database_url)
    away = OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))

    def run(work: Any, *, what: str = "") -> Any:
        raise away

    monkeypatch.setattr(db, "run", run)
    monkeypatch.setattr(store_module, "store_posting", lambda *a: pytest.fail("stored one by one"))
    assert store_postings(db, settings, [_draft(1), _draft(2)]) == [away, away]


def _pipeline(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, **batching: Any
) -> tuple[StorePipeline, list[int]]:
    """A store pipeline with these batch settings, and the size of every batch it stores."""
    sizes: list[int] = []
    real = store_module.store_postings

    def recording(db: Any, settings: Settings, drafts: Any) -> Any:
        sizes.append(len(drafts))
        return real(db, settings, drafts)

    monkeypatch.setattr(store_module, "store_postings", recording)
    return StorePipeline(dataclasses.replace(settings, **batching)), sizes


async def _through(pipeline: StorePipeline, drafts: list[PostingDraft]) -> list[Any]:
    """Every draft through the pipeline at once (as Scrapy hands them over); a batch never stored fails
    the test in 20 s instead of hanging it."""
    everything = asyncio.gather(*(pipeline.process_item(d) for d in drafts), return_exceptions=True)
    return await asyncio.wait_for(everything, 20)


def test_the_pipeline_stores_a_batch_once_it_is_full_and_the_rest_after_the_wait(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, db = _home(database_url)
    pipeline, sizes = _pipeline(settings, monkeypatch, store_batch=3, store_batch_wait_s=0.3)
    drafts = [_draft(i) for i in range(1, 5)]
    started = time.monotonic()
    out = asyncio.run(_through(pipeline, drafts))
    waited = time.monotonic() - started
    assert sizes == [3, 1]
    assert waited >= 0.3  # the fourth waited for its batch to fill, then for the time limit
    assert out == drafts and all(d.posting_id and d.is_new for d in drafts)
    assert _stored(db) == 4


def test_the_pipeline_stores_a_batch_at_its_byte_limit_and_drops_only_what_failed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, db = _home(database_url)
    pipeline, sizes = _pipeline(
        settings, monkeypatch, store_batch=100, store_batch_bytes=1500, store_batch_wait_s=30.0
    )
    drafts = [_draft(1), _draft(2, source="removed-while-crawling"), _draft(3)]
    assert all(len(d.raw) > 500 for d in drafts)
    started = time.monotonic()
    out = asyncio.run(_through(pipeline, drafts))
    assert time.monotonic() - started < 10  # not the 30 s wait: the bytes cut the batch
    assert sizes == [3]
    assert out[0] is drafts[0] and out[2] is drafts[2]
    assert isinstance(out[1], DropItem) and isinstance(out[1].__cause__, LookupError)
    assert pipeline.store_failed == 1 and _stored(db) == 2


def test_closing_stores_what_still_waits(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, db = _home(database_url)
    pipeline, sizes = _pipeline(settings, monkeypatch, store_batch=10, store_batch_wait_s=60.0)

    async def park_then_close() -> Any:
        task = asyncio.ensure_future(pipeline.process_item(_draft(1)))
        await asyncio.sleep(0.05)
        assert not task.done()
        pipeline.close_spider()
        return await task

    stored = asyncio.run(park_then_close())
    assert sizes == [1] and stored.is_new and _stored(db) == 1


def test_a_batch_holds_every_leak_decision_lock_before_deciding(tmp_path: Path, database_url: str) -> None:
    """PostgreSQL: every key of the batch's postings is held (advisory locks); SQLite: the write lock."""
    _, db = _home(database_url)
    postings = [({1, 2}, 0x1234_5678_9ABC_DEF0, "a" * 64), ({2}, None, "b" * 64), (set(), 7, "c" * 64)]
    with db.session() as sess:
        lock_leak_decisions_many(sess, postings)
        conn = sess.connection()
        if db.is_sqlite:
            assert conn.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
        else:
            held = {
                (int(hi) << 32) | int(lo)
                for hi, lo in conn.execute(
                    text(
                        "SELECT classid, objid FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND granted"
                    )
                )
            }
            wanted = {k & 0xFFFF_FFFF_FFFF_FFFF for t, s, c in postings for k in leak_lock_keys(t, s, c)}
            assert wanted and held == wanted


def test_findings_of_one_batch_decide_alerts_against_each_other(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two copies of one leak in the same batch make one alert, the second a sighting of it; the locks of
    both are taken before either looks for earlier copies."""
    settings, db = _home(database_url)
    from core.models import Tenant

    with db.session() as sess:
        tenant = Tenant(name="acme")
        sess.add(tenant)
        sess.flush()
        tenant_id = tenant.id
    finding = Finding(tenant_id, "acme", "keyword", 1, "high", watch="leak", watch_id=1)
    first, copy = _draft(1), _draft(2)
    copy.content_hash = first.content_hash
    first.findings, copy.findings = [finding], [finding]
    calls: list[Any] = []
    real_lock, real_near = store_module.lock_leak_decisions_many, store_module.near_duplicates
    monkeypatch.setattr(
        store_module, "lock_leak_decisions_many", lambda s, p: (calls.append(list(p)), real_lock(s, p))[1]
    )
    monkeypatch.setattr(
        store_module, "near_duplicates", lambda *a, **k: (calls.append("look"), real_near(*a, **k))[1]
    )
    results = store_postings(db, settings, [first, copy])
    assert [r.alerts for r in results if isinstance(r, StoreResult)] == [1, 0]
    held = {tenant_id}, first.simhash, first.content_hash
    assert calls == [[held, held], "look", "look"]


def test_a_fault_after_storing_fails_each_posting_of_the_batch_instead_of_hanging_the_crawl(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch stored by its timer has no caller to hand an exception to: each posting gets it."""
    settings, db = _home(database_url)
    pipeline, sizes = _pipeline(settings, monkeypatch, store_batch=2, store_batch_wait_s=0.1)

    def index_down(*args: Any) -> None:
        raise RuntimeError("search index down")

    monkeypatch.setattr(pipeline.search, "add", index_down)
    out = asyncio.run(_through(pipeline, [_draft(1), _draft(2), _draft(3)]))
    assert sizes == [2, 1]
    assert [type(o) for o in out] == [RuntimeError] * 3
    assert _stored(db) == 3  # the postings themselves were stored before the fault
