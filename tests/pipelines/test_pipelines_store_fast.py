"""The storing path on the DBAPI cursor (pipelines.fastsql) writes exactly what SQLAlchemy wrote.

The same detected postings (the bench corpus: three tenants, every watch kind) are stored twice into the
same freshly emptied database: once with every prepared statement run through ``Connection.execute`` (the
reference: the statements and parameters of the previous code) and once on the DBAPI cursor; every row of
every table is then compared column by column as the database holds it (raw driver values: SQLite's
DateTime and JSON text, PostgreSQL's types). Only delivery event ids (random uuids) are normalised.
Reposts of the same URL, exact and near duplicates (the alert-joining paths), postings with and without a
fetch record, without findings and without text are among them.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

import core.settings
from core.db import open_database
from core.models import Base, Delivery, Posting, Suppression, Tenant
from core.policy import suppression_key
from core.posting import PostingDraft
from core.settings import load_settings
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.subscriptions import add_subscription
from pipelines import fastsql
from pipelines.store import _INSERT_DELIVERIES, _INSERT_POSTING, store_posting, store_postings

ROOT = Path(__file__).resolve().parents[2]

#: The tables storing a posting writes (emptied between the two runs).
_STORED = ("deliveries", "sightings", "findings", "alerts", "posting_bands", "posting_texts", "postings")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

_FETCH = {
    "method": "GET",
    "request_url": "http://x/",
    "redirects": [],
    "url": "http://x/",
    "status": 200,
    "protocol": "HTTP/1.1",
    "request_headers": [["Accept", "*/*"], ["User-Agent", "leaksentinel/0.1"]],
    "response_headers": [["Content-Type", "text/plain; charset=utf-8"], ["X-Ünïcode", "ä"]],
    "headers_truncated": False,
    "body_sha256": "0" * 64,
    "rendered": False,
}


@pytest.fixture
def _restore_fastsql() -> Iterator[None]:
    previous = fastsql.set_enabled(True)
    yield
    fastsql.set_enabled(previous)


@pytest.fixture
def _stopped_delivery_clock() -> Iterator[None]:
    """Delivery.created_at is its column's default (utcnow): a stopped clock, the same for both runs.
    SQLAlchemy memoises a column's default on the Column (``_default_description_tuple``) at its first
    insert in the process: that memo is dropped, so the reference path sees the stopped clock too."""
    column = Delivery.__table__.c.created_at
    default: Any = column.default
    original = default.arg
    now = datetime(2026, 11, 2, 8, 0, 0, 123456, tzinfo=UTC)
    default.arg = lambda _ctx: now
    column.__dict__.pop("_default_description_tuple", None)
    try:
        yield
    finally:
        default.arg = original
        column.__dict__.pop("_default_description_tuple", None)


def _drafts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[PostingDraft]:
    """A home with the bench's tenants and watches, subscriptions of every shape, a suppression, and the
    drafts to store (detected once)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import crawl as bench_crawl
        import detect as bench_corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from pipelines.detect import DetectPipeline
    from pipelines.fingerprint import FingerprintPipeline
    from pipelines.normalize import NormalizePipeline

    pastes, planted = bench_crawl.make_pastes(60, 10000, 5)
    monkeypatch.setenv("LEAKSENTINEL_HOME", str(tmp_path / "w" / "scan-home"))
    settings = load_settings()  # with the test's database (the bench builds Settings(home=...) alone)
    with monkeypatch.context() as m:
        m.setattr(core.settings, "Settings", lambda home: settings)
        assert bench_corpus.setup_scan_home(tmp_path / "w", planted) == settings.home
    db = open_database(settings)
    add_source(db, "pastes", "pastebin", "http://127.0.0.1:1/", every="1h")
    add_source(db, "mirror", "pastebin", "http://127.0.0.1:2/", every="1h")
    with db.session() as sess:
        tenants = list(sess.scalars(select(Tenant.id).order_by(Tenant.id)))
    add_subscription(db, settings, tenants[0], webhook="http://127.0.0.1:9/a", secret="s")
    add_subscription(db, settings, tenants[0], webhook="http://127.0.0.1:9/b", min_severity="critical")
    add_subscription(db, settings, tenants[1], webhook="http://127.0.0.1:9/c", kinds=["keyword", "domain"])
    add_subscription(db, settings, tenants[1], webhook="http://127.0.0.1:9/d", digest="daily")
    add_subscription(db, settings, tenants[2], webhook="http://127.0.0.1:9/e")

    norm, fp, det = NormalizePipeline(settings), FingerprintPipeline(), DetectPipeline(settings)
    start = datetime(2026, 10, 31, 23, 59, 50, 123456, tzinfo=UTC)  # crosses a month (retain_month)

    def detected(i: int, source: str, url: str, body: str, fetch: bool) -> PostingDraft:
        draft = PostingDraft(
            source=source,
            url=url,
            raw=body.encode(),
            text=body,
            title=f"title {i}" if i % 3 else None,
            author="ünïcode" if i % 4 == 0 else None,
            published=start - timedelta(days=1) if i % 5 == 0 else None,
            fetch=copy.deepcopy(_FETCH) if fetch else None,
        )
        draft.fetched = start + timedelta(seconds=i, microseconds=i * 7)
        return det.detect_item(fp.process_item(norm.process_item(draft)))

    drafts: list[PostingDraft] = []
    for i, p in enumerate(pastes):
        drafts.append(detected(i, "pastes", f"http://127.0.0.1:1/raw/{p.key}", p.text, fetch=i % 2 == 0))
    assert sum(1 for d in drafts if d.findings) > 20
    with_findings = [d for d in drafts if d.findings]
    n = len(drafts)
    for k, d in enumerate(with_findings[:6]):
        # the same text elsewhere (exact duplicate), a near duplicate, the same URL again
        drafts.append(detected(n + k, "mirror", d.url.replace(":1/", ":2/"), d.text, fetch=k % 2 == 1))
        near = d.text.replace("\n", "\n ", 1) + "x"
        drafts.append(detected(n + 10 + k, "mirror", d.url + "/near", near, fetch=False))
        drafts.append(copy.deepcopy(d))
    drafts.append(detected(n + 20, "pastes", "http://127.0.0.1:1/raw/plain", "nothing to see\n" * 40, True))
    assert not drafts[-1].findings
    empty = PostingDraft(source="pastes", url="http://127.0.0.1:1/raw/empty", raw=b"\x00", text="")
    empty.fetched = start
    empty.content_hash, empty.candidate_hashes = "e" * 64, b"\x01\x02"
    drafts.append(empty)
    # a tip (implicit source, made on first use) and a finding marked false positive on its content
    drafts.append(detected(n + 21, "tips", "tip:1", with_findings[7].text, fetch=False))
    silenced = with_findings[8]
    f = silenced.findings[0]
    with db.session() as sess:
        sess.add(
            Suppression(
                tenant_id=f.tenant_id,
                key=suppression_key(f.kind, f.watch_id, f.record_key, silenced.content_hash),
                actor="test",
            )
        )
    return drafts


def _dump(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as the driver reads it (no SQLAlchemy type processing); on PostgreSQL the
    row's text form too (JSON as stored, timestamps with their precision)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            name = table.name
            as_text = "" if db.is_sqlite else f", CAST({name} AS text)"
            rows = [tuple(r) for r in conn.exec_driver_sql(f"SELECT *{as_text} FROM {name} ORDER BY 1")]
            if name == "deliveries":
                col = list(table.columns.keys()).index("event_id")
                assert all(_UUID.match(r[col]) for r in rows) and len({r[col] for r in rows}) == len(rows)
                rows = [
                    (
                        *r[:col],
                        "uuid",
                        *(v.replace(r[col], "uuid") if isinstance(v, str) else v for v in r[col + 1 :]),
                    )
                    for r in rows
                ]
            out[name] = rows
    return out


def _empty_stored(db: Any) -> None:
    """Delete what storing wrote, ids starting over (a TRUNCATE ... CASCADE would take the suppressions)."""
    with db.engine.begin() as conn:
        for name in _STORED:
            conn.exec_driver_sql(f"DELETE FROM {name}")
            if not db.is_sqlite and name != "posting_texts":
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 1, false)")


def test_the_fast_path_stores_exactly_what_sqlalchemy_stored(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    _restore_fastsql: None,
    _stopped_delivery_clock: None,
) -> None:
    drafts = _drafts(tmp_path, monkeypatch)
    settings = load_settings()
    db = open_database(settings)

    dumps = []
    results = []
    for fast in (False, True):
        fastsql.set_enabled(fast)
        results.append([store_posting(db, settings, copy.deepcopy(d)) for d in drafts])
        dumps.append(_dump(db))
        if not fast:
            _empty_stored(db)
    reference, fast_rows = dumps
    with db.engine.connect() as conn:  # the second run did go through the DBAPI cursor
        assert _INSERT_POSTING._plan(conn) is not None and _INSERT_DELIVERIES._plan(conn) is not None
    assert results[0] == results[1]
    stored = results[0]
    assert sum(not r.new for r in stored) >= 6 and any(r.alerts == 0 and r.findings for r in stored)
    assert len(reference["alerts"]) > 10 and len(reference["deliveries"]) > 5
    assert len(reference["sightings"]) > len(reference["alerts"])  # reposts joined alerts
    fetch_record = 3  # posting_texts: posting_id, retain_month, text, fetch_record
    assert any(r[fetch_record] is not None for r in reference["posting_texts"])  # fetch records kept
    assert any(r[fetch_record] is None for r in reference["posting_texts"])  # SQL NULL, not JSON null
    for name in reference:
        assert fast_rows[name] == reference[name], name


@pytest.mark.parametrize("batch", [5, 32, 1000])
def test_batches_store_exactly_what_one_posting_at_a_time_stored(
    batch: int,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    _restore_fastsql: None,
    _stopped_delivery_clock: None,
) -> None:
    """A crawl's batches (store_postings: one transaction, the batch's locks first) store the rows, ids and
    alert decisions that storing each posting alone stores: reposts of a URL, exact and near duplicates and
    a tip's implicit source fall inside a batch as well as across batches."""
    drafts = _drafts(tmp_path, monkeypatch)
    settings = load_settings()
    db = open_database(settings)
    alone = [store_posting(db, settings, copy.deepcopy(d)) for d in drafts]
    reference = _dump(db)
    _empty_stored(db)
    batched: list[Any] = []
    for start in range(0, len(drafts), batch):
        batched.extend(
            store_postings(db, settings, [copy.deepcopy(d) for d in drafts[start : start + batch]])
        )
    assert batched == alone
    assert sum(r.alerts for r in alone) > 10 and sum(not r.new for r in alone) >= 6
    rows = _dump(db)
    for name in reference:
        assert rows[name] == reference[name], name


def test_a_duplicate_insert_raises_sqlalchemys_integrity_error(
    tmp_path: Path, database_url: str, _restore_fastsql: None
) -> None:
    """DBAPI errors reach the caller as SQLAlchemy's (store_posting's duplicate branch, retry_transient)."""
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "site", "pastebin", "http://site.example/")
    row = {
        "url": "http://site.example/1",
        "title": None,
        "author": None,
        "published": None,
        "fetched": datetime(2026, 1, 1, tzinfo=UTC),
        "content_hash": "c" * 64,
        "simhash": -5,
        "evidence_sha256": None,
        "size": 3,
        "candidate_hashes": None,
    }
    with db.session() as sess:
        conn = sess.connection()
        source_id = conn.scalar(text("SELECT id FROM sources WHERE name = 'site'"))
        first = _INSERT_POSTING.insert(conn, {**row, "source_id": source_id})
        assert sess.get(Posting, first) is not None
    with pytest.raises(IntegrityError), db.session() as sess:
        _INSERT_POSTING.insert(sess.connection(), {**row, "source_id": source_id})
