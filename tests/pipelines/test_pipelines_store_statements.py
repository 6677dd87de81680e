"""Review of the statement-based storing path (pipelines.store / neardup / leaklock after 5c17ece..46405f8).

Each test pins a behaviour of the ORM path the statements replaced: what rows a stored posting writes,
the (source, url) idempotency through the IntegrityError branch, near-duplicate look-ups, and the
source a posting is stored under when its source is removed (soft delete) or its name reused while
the per-database source-id cache still holds the old id.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from core.db import open_database
from core.models import (
    Alert,
    Delivery,
    Finding,
    Posting,
    PostingBand,
    PostingText,
    Sighting,
    Source,
    Tenant,
    month_of,
)
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from leaksentinel.actions.sources import add_source, remove_source
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_keyword_watch
from pipelines.ingest import Ingest
from pipelines.leaklock import PAUSE_ENV
from pipelines.neardup import add_bands, near_duplicates
from pipelines.store import StoreResult, raise_alerts, store_posting


def _settings() -> Settings:
    settings = load_settings()
    db = open_database(settings)
    with db.session() as sess:
        for name in ("site-a", "site-b"):
            sess.add(Source(name=name, kind="pastebin", url=f"http://{name}.example"))
    return settings


def _plain(source: str, url: str, text: str = "nothing to see here\n") -> PostingDraft:
    """A draft without findings (no detector needed): the posting, its text and its bands only."""
    return PostingDraft(
        source=source, url=url, text=text, content_hash=f"{abs(hash(url)):064d}"[-64:], simhash=1
    )


def _with_keyword(tmp_path: Path) -> Settings:
    settings = _settings()
    db = open_database(settings)
    add_tenant(db, "acme", [], [])
    with db.session() as sess:
        tenant_id = sess.scalar(select(Tenant.id).where(Tenant.name == "acme"))
    assert tenant_id is not None
    add_keyword_watch(db, tenant_id, "acmecorp")
    add_subscription(db, settings, tenant_id, webhook="http://127.0.0.1:9/hook", secret="x")
    return settings


#: Long enough for a SimHash (short texts have none, hence no bands).
_LEAK = "".join(
    f"row {i}: acmecorp customer {i * 7919 % 1000} paid with card ending {i:04d}\n" for i in range(40)
)


def _detected(
    settings: Settings, source: str, url: str, text: str, fetched: datetime | None = None
) -> PostingDraft:
    draft = PostingDraft(source=source, url=url, raw=text.encode())
    if fetched is not None:
        draft.fetched = fetched
    with Ingest(settings, open_database(settings)) as ingest:
        ingest.detect(draft)
    assert draft.findings, "the keyword watch must match"
    return draft


# --- the source-id cache -------------------------------------------------------------------------------


def test_a_removed_source_no_longer_takes_postings(tmp_path: Path, database_url: str) -> None:
    """remove_source's contract: "a crawl already running finishes, but what it finds after this point is
    not stored (its source name no longer resolves)". The removal is a soft delete (the row stays,
    renamed), so no foreign key fails and the cache (SOURCE_ID_TTL_S) is never emptied: for up to 60 s a
    running crawl keeps storing under the removed source."""
    settings = _settings()
    db = open_database(settings)
    assert store_posting(db, settings, _plain("site-a", "http://site-a.example/1")).new
    remove_source(db, "site-a")
    with pytest.raises(LookupError):
        store_posting(db, settings, _plain("site-a", "http://site-a.example/2"))


def test_a_reused_source_name_stores_under_the_new_source(tmp_path: Path, database_url: str) -> None:
    """A removed source's name is free at once (remove_source); a posting stored under that name must go
    to the new source, not to the removed one whose id the cache still holds."""
    settings = _settings()
    db = open_database(settings)
    store_posting(db, settings, _plain("site-a", "http://site-a.example/1"))
    remove_source(db, "site-a")
    add_source(db, "site-a", "pastebin", "http://site-a.example")
    result = store_posting(db, settings, _plain("site-a", "http://site-a.example/2"))
    with db.session() as sess:
        new_id = sess.scalar(select(Source.id).where(Source.name == "site-a"))
        stored_under = sess.scalar(select(Posting.source_id).where(Posting.id == result.posting_id))
    assert stored_under == new_id


def test_a_hard_deleted_cached_source_fails_as_unknown(tmp_path: Path, database_url: str) -> None:
    """A source row deleted while its id is cached: the foreign key fails, the cache is emptied and the
    posting fails as an unknown source (as the look-up per posting did), nothing stored."""
    settings = _settings()
    db = open_database(settings)
    store_posting(db, settings, _plain("site-a", "http://site-a.example/1"))
    with db.session() as sess:
        sess.execute(delete(Source).where(Source.name == "site-a"))
    with pytest.raises(LookupError):
        store_posting(db, settings, _plain("site-a", "http://site-a.example/2"))
    with db.session() as sess:
        assert sess.scalar(select(func.count()).select_from(Posting)) == 0


# --- (source, url) idempotency through the IntegrityError branch ----------------------------------------


def test_storing_the_same_source_url_again_returns_the_stored_row(tmp_path: Path, database_url: str) -> None:
    settings = _with_keyword(tmp_path)
    db = open_database(settings)
    text = _LEAK
    first = store_posting(db, settings, _detected(settings, "site-a", "http://site-a.example/1", text))
    again = store_posting(
        db, settings, _detected(settings, "site-a", "http://site-a.example/1", text + "x\n")
    )
    assert first.new and first.alerts == 1
    assert (again.posting_id, again.new, again.alerts, again.findings) == (first.posting_id, False, 0, 0)
    # the cache was emptied by the duplicate; the next posting still resolves its source
    other = store_posting(db, settings, _plain("site-a", "http://site-a.example/2"))
    assert other.new
    with db.session() as sess:
        assert sess.scalar(select(func.count()).select_from(Posting)) == 2
        assert sess.scalar(select(func.count()).select_from(PostingText)) == 2
        assert sess.scalar(select(func.count()).select_from(Alert)) == 1
        assert sess.scalar(select(func.count()).select_from(Sighting)) == 1
        assert sess.scalar(select(func.count()).select_from(Delivery)) == 1
        assert sess.scalar(select(func.count()).select_from(PostingBand)) == 8


def test_two_threads_storing_the_same_source_url_store_it_once(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second insert waits for the first transaction (held open inside the leak decision), then
    fails on the unique (source, url) and returns the first one's row."""
    settings = _with_keyword(tmp_path)
    db = open_database(settings)
    text = _LEAK
    drafts = [_detected(settings, "site-a", "http://site-a.example/1", text) for _ in range(2)]
    monkeypatch.setenv(PAUSE_ENV, "0.5")
    results: list[StoreResult | Exception | None] = [None, None]

    def run(i: int) -> None:
        try:
            results[i] = store_posting(db, settings, drafts[i])
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done = [r for r in results if isinstance(r, StoreResult)]
    assert len(done) == 2, results
    assert sorted(r.new for r in done) == [False, True]
    assert len({r.posting_id for r in done}) == 1
    with db.session() as sess:
        assert sess.scalar(select(func.count()).select_from(Posting)) == 1
        assert sess.scalar(select(func.count()).select_from(Alert)) == 1
        assert sess.scalar(select(func.count()).select_from(Delivery)) == 1


# --- the rows written ------------------------------------------------------------------------------------


def test_rows_of_a_new_leak_and_a_repost_match_the_orm_path(tmp_path: Path, database_url: str) -> None:
    """Defaults the ORM filled (Python-side column defaults), JSON lists, aware datetimes, retain_month
    from a non-UTC fetch time that falls in the previous month in UTC."""
    settings = _with_keyword(tmp_path)
    db = open_database(settings)
    text = _LEAK
    # 2026-10-31 22:00 UTC (given in UTC: SQLite keeps the wall time of an aware value and forgets its
    # zone, before and after these commits alike)
    fetched = datetime(2026, 11, 1, 3, 0, tzinfo=timezone(timedelta(hours=5))).astimezone(UTC)
    first = store_posting(
        db, settings, _detected(settings, "site-a", "http://site-a.example/1", text, fetched)
    )
    later = datetime(2026, 11, 20, 12, 0)  # naive: taken as UTC
    repost = store_posting(
        db, settings, _detected(settings, "site-b", "http://site-b.example/9", text, later)
    )
    assert first.new and first.alerts == 1 and repost.new and repost.alerts == 0
    with db.session() as sess:
        posting = sess.get(Posting, first.posting_id)
        assert posting is not None
        assert posting.fetched == fetched and posting.fetched.tzinfo is not None
        assert posting.text == text and posting.size == len(text.encode())
        row = sess.scalar(select(PostingText).where(PostingText.posting_id == first.posting_id))
        assert row is not None and row.retain_month == month_of(fetched) == datetime(2026, 10, 1).date()
        (alert,) = sess.scalars(select(Alert)).all()
        assert alert.posting_id == first.posting_id and alert.status == "new"
        assert alert.kinds == ["keyword"] and isinstance(alert.kinds, list)
        assert alert.first_seen == fetched
        assert alert.last_seen == later.replace(tzinfo=UTC)  # touched by the repost
        assert alert.assignee is None and alert.status_reason is None
        sightings = sess.scalars(select(Sighting).order_by(Sighting.id)).all()
        assert [(s.posting_id, s.url) for s in sightings] == [
            (first.posting_id, "http://site-a.example/1"),
            (repost.posting_id, "http://site-b.example/9"),
        ]
        assert sightings[0].seen_at == fetched and sightings[1].seen_at == later.replace(tzinfo=UTC)
        (delivery,) = sess.scalars(select(Delivery)).all()
        assert delivery.alert_id == alert.id and delivery.status == "pending" and delivery.attempts == 0
        assert delivery.event_type == "alert.created" and delivery.created_at is not None
        assert delivery.payload is None and len(delivery.event_id) == 36
        findings = sess.scalars(select(Finding).order_by(Finding.id)).all()
        assert {f.posting_id for f in findings} == {first.posting_id, repost.posting_id}
        assert all(f.alert_id == alert.id and isinstance(f.fields, list) for f in findings)
        bands = sess.scalar(
            select(func.count()).select_from(PostingBand).where(PostingBand.posting_id == first.posting_id)
        )
        assert bands == 4


# --- near duplicates --------------------------------------------------------------------------------------


def test_near_duplicates_one_query_matches_the_two_queries(tmp_path: Path, database_url: str) -> None:
    """Same text whatever the SimHash, SimHash within 3 bits, a shared band but 4 bits apart excluded,
    a posting without SimHash found by its text; in a read session too (the posting page)."""
    settings = _settings()
    db = open_database(settings)
    base = 0x0123_4567_89AB_CDEF

    def signed(v: int) -> int:  # postings.simhash is a signed BIGINT
        return v - (1 << 64) if v >= 1 << 63 else v

    rows = {
        "same-text-far": ("h1", signed(base ^ 0xFFFF_FFFF_0000_0000), True),
        "near-3": ("h2", base ^ 0b111, True),
        "far-4": ("h3", base ^ 0b1111, False),
        "no-simhash-same-text": ("h1", None, True),
        "unrelated": ("h5", signed(~base & ((1 << 64) - 1)), False),
    }
    ids: dict[str, int] = {}
    with db.session() as sess:
        source_id = sess.scalar(select(Source.id).where(Source.name == "site-a"))
        me = Posting(source_id=source_id, url="u:me", content_hash="h1", simhash=base)
        sess.add(me)
        for name, (chash, simhash, _) in rows.items():
            p = Posting(source_id=source_id, url=f"u:{name}", content_hash=chash, simhash=simhash)
            sess.add(p)
            sess.flush()
            ids[name] = p.id
            add_bands(sess, p.id, simhash)
        sess.flush()
        add_bands(sess, me.id, base)
        me_id = me.id
    want = sorted(ids[n] for n, (_, _, hit) in rows.items() if hit)
    with db.session() as sess:
        assert near_duplicates(sess, base, "h1", exclude=me_id) == want
        assert near_duplicates(sess, None, "h1", exclude=me_id) == sorted(
            [ids["same-text-far"], ids["no-simhash-same-text"]]
        )
        assert near_duplicates(sess, base, "h1") == sorted([*want, me_id])
    with db.read_session() as sess:
        assert near_duplicates(sess, base, "h1", exclude=me_id) == want
        assert near_duplicates(sess, base, "nothing-has-this") == sorted([me_id, ids["near-3"]])


# --- callers holding ORM objects -----------------------------------------------------------------------


def test_an_alert_loaded_before_raise_alerts_sees_its_new_last_seen(
    tmp_path: Path, database_url: str
) -> None:
    settings = _with_keyword(tmp_path)
    db = open_database(settings)
    first = _detected(settings, "site-a", "http://site-a.example/1", _LEAK, datetime(2026, 11, 1, tzinfo=UTC))
    store_posting(db, settings, first)
    repost = _detected(
        settings, "site-b", "http://site-b.example/1", _LEAK, datetime(2026, 11, 9, tzinfo=UTC)
    )
    found, repost.findings = repost.findings, []
    stored = store_posting(db, settings, repost)  # the posting alone, its findings raised below (retro)
    with db.session() as sess:
        alert = sess.scalars(select(Alert)).one()
        assert alert.last_seen == datetime(2026, 11, 1, tzinfo=UTC)
        posting = sess.get(Posting, stored.posting_id)
        assert posting is not None
        assert raise_alerts(sess, posting, found) == 0  # joined as a sighting
        assert alert.last_seen == datetime(2026, 11, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("statement", "params", "index"),
    [
        # which of a new alert's records the tenant saw before: 61 ms per alert at 300k findings without
        ("_SEEN_RECORDS", {"tenant_id": 1, "keys": ["r1", "r2"]}, "ix_findings_tenant_record"),
        # the tenant's alert on a repost's earlier copies: 54 ms at 100k alerts when the copies had none
        ("_EXISTING_LEAK", {"tenant_id": 1, "reposted": [3, 4]}, "ix_sightings_posting_id"),
    ],
)
def test_deciding_an_alert_searches_indexes_instead_of_reading_the_tenants_rows(
    tmp_path: Path, statement: str, params: dict[str, object], index: str
) -> None:
    """The reads of deciding an alert stay index searches as the database grows (the plan, SQLite and
    PostgreSQL; PostgreSQL told to avoid sequential scans, as it would on a large table)."""
    from sqlalchemy import text

    import pipelines.store as store_module

    db = open_database(_settings())
    stmt = getattr(store_module, statement)
    with db.engine.connect() as conn:
        options = {"literal_binds": True, "render_postcompile": True}
        sql = str(stmt.params(**params).compile(dialect=conn.dialect, compile_kwargs=options))
        if db.is_sqlite:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {sql}")))
    assert index in plan, plan
