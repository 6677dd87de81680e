"""Pipeline stage 4: store the posting, its findings and alerts, and the outbox, in one transaction.

Why one transaction: an alert and its delivery rows exist if and only if the posting does, so a crash
between "found" and "delivered" loses nothing (the relay picks the outbox up) and a posting is never
alerted twice (its (source, URL) is unique).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.db import Database, is_transient, open_database
from core.evidence_store import EvidenceStore, as_store, put_blob, put_blobs
from core.fetch_record import prepare_fetch_record, write_fetch_record
from core.models import (
    Alert,
    Delivery,
    Finding,
    Posting,
    PostingText,
    Sighting,
    Source,
    Subscription,
    Suppression,
    Tenant,
    month_of,
    utcnow,
)
from core.policy import passes_filters, suppression_key, tenant_severity
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from pipelines.batching import ItemBatches
from pipelines.detection.candidates import CandidateIndex
from pipelines.detection.engine import Finding as DetectedFinding
from pipelines.fastsql import Prepared
from pipelines.leaklock import lock_leak_decisions, lock_leak_decisions_many, pause_for_tests
from pipelines.neardup import add_bands, near_duplicates
from pipelines.recovery import INDEXED_STAT, mark_indexed, unindexed_postings
from pipelines.search_index import SearchIndexer

__all__ = [
    "StorePipeline",
    "StoreResult",
    "add_findings",
    "raise_alerts",
    "store_posting",
    "store_postings",
    "write_evidence",
]

log = logging.getLogger(__name__)

#: Crawl stats: postings that could not be stored, and the first reason (crawlers.run reports both).
STORE_FAILED_STAT = "leaksentinel/store_failed"
STORE_ERROR_STAT = "leaksentinel/store_error"

LOCAL_SOURCE = "local"
TIPS_SOURCE = "tips"
#: Sources that exist implicitly: local files given to `scan --store`, and texts sent to the tip line.
_IMPLICIT = {LOCAL_SOURCE: ("local", "file:"), TIPS_SOURCE: ("tips", "tip:")}


@dataclass(frozen=True)
class StoreResult:
    posting_id: int
    new: bool
    alerts: int
    findings: int


def write_evidence(target: EvidenceStore | Settings | Path, raw: bytes) -> str:
    """Keep the raw bytes content-addressed (``ab/abcdef...``) in the evidence store the settings name (a
    directory or an S3-compatible bucket, core.evidence_store; a Path is a directory); returns the SHA-256.
    A store that cannot be written raises (an OSError): the posting is not stored and the run says so."""
    return put_blob(as_store(target), raw)


# The hot statements run on the transaction's DBAPI cursor (pipelines.fastsql: compiled by SQLAlchemy once
# per dialect, a fraction of Connection.execute's CPU); the ones with an expanding IN stay on SQLAlchemy.
_SOURCE_ID = Prepared(select(Source.id).where(Source.name == bindparam("name")))
_STORED_ID = Prepared(
    select(Posting.id).where(Posting.source_id == bindparam("source_id"), Posting.url == bindparam("url"))
)


def _source_id_now(sess: Session, name: str) -> int:
    """The source's id, read in this transaction (never cached: a source removed or renamed while a crawl
    runs must stop taking its postings at once); an implicit source is made on first use."""
    source_id: int | None = _SOURCE_ID.scalar(sess.connection(), {"name": name})
    return source_id if source_id is not None else _source_id(sess, name)


def _source_id(sess: Session, name: str) -> int:
    source = sess.scalar(select(Source).where(Source.name == name))
    if source is None:
        if name not in _IMPLICIT:
            raise LookupError(f"unknown source {name!r}")
        kind, url = _IMPLICIT[name]
        source = Source(name=name, kind=kind, url=url, schedule=None, enabled=False)
        sess.add(source)
        sess.flush()
    return source.id


@dataclass(frozen=True)
class StoredPosting:
    """What deciding a posting's alerts needs of it (a Posting row has these too)."""

    id: int
    url: str
    fetched: datetime | None
    content_hash: str
    simhash: int | None


_INSERT_POSTING = Prepared(
    insert(Posting),
    (
        "source_id",
        "url",
        "title",
        "author",
        "published",
        "fetched",
        "content_hash",
        "simhash",
        "evidence_sha256",
        "size",
        "candidate_hashes",
    ),
    returning_id=True,
)
_INSERT_TEXT = Prepared(insert(PostingText), ("posting_id", "retain_month", "text"))
_INSERT_TEXT_FETCH = Prepared(insert(PostingText), ("posting_id", "retain_month", "text", "fetch_record"))


def _stored_before(draft: PostingDraft) -> Callable[[Session], int | None]:
    def stored_before(sess: Session) -> int | None:
        """The stored posting's id, or None; only reads (an implicit source not made yet holds nothing)."""
        conn = sess.connection()
        source_id = _SOURCE_ID.scalar(conn, {"name": draft.source})
        if source_id is None:
            return None
        found: int | None = _STORED_ID.scalar(conn, {"source_id": source_id, "url": draft.url})
        return found

    return stored_before


def _fetch_outside(db: Database, settings: Settings, draft: PostingDraft) -> dict[str, Any] | None:
    """The HTTP exchange for the text's row (a posting without text keeps it in a sidecar once stored:
    StorePipeline), prepared before the transaction: a rendered page's screenshot is written to the
    evidence store (a file, an S3 PUT) while no database lock is held (SQLite's transactions take the
    write lock at BEGIN). A screenshot is kept for a page not stored yet only: one taken again of a page
    already stored would be held by no row, so never purged. (Two runs storing the same new page at once
    may each keep one; the loser's blob is then held by no row: content-addressed, rare, harmless.)"""
    if not (draft.fetch and draft.text):
        return None
    shot = isinstance(draft.fetch.get("screenshot_png"), bytes)
    if shot and db.run_read(_stored_before(draft), what=f"storing {draft.url[:200]}") is not None:
        return None
    return _fetch_to_keep(settings, draft)


def _store_draft(
    sess: Session,
    draft: PostingDraft,
    evidence: str,
    size: int,
    fetch: dict[str, Any] | None,
    source_ids: dict[str, int],
    reads: TenantReads,
    *,
    locked: bool = False,
) -> StoreResult:
    """Store one posting in the session's transaction (``source_ids``, ``reads``: what this transaction
    has read already)."""
    source_id = source_ids.get(draft.source)
    if source_id is None:
        source_id = source_ids[draft.source] = _source_id_now(sess, draft.source)
    conn = sess.connection()
    # Looked up first (a statement built once: cheap), not left to the unique constraint: a failed
    # insert would burn a posting id and log an error on PostgreSQL for every repost of a URL.
    stored = _STORED_ID.scalar(conn, {"source_id": source_id, "url": draft.url})
    if stored is not None:
        return StoreResult(stored, False, 0, 0)
    fetched = draft.fetched or utcnow()
    posting_id = _INSERT_POSTING.insert(
        conn,
        {
            "source_id": source_id,
            "url": draft.url,
            "title": draft.title,
            "author": draft.author,
            "published": draft.published,
            "fetched": fetched,
            "content_hash": draft.content_hash,
            "simhash": draft.simhash,
            "evidence_sha256": evidence,
            "size": size,
            "candidate_hashes": draft.candidate_hashes or None,
        },
    )
    posting = StoredPosting(posting_id, draft.url, fetched, draft.content_hash, draft.simhash)
    if draft.text:  # no row is an empty text (Posting.text)
        row = {"posting_id": posting.id, "retain_month": month_of(fetched), "text": draft.text}
        if fetch is None:  # no fetch_record in the insert: SQL NULL (JSON's None would be 'null')
            _INSERT_TEXT.execute(conn, row)
        else:
            _INSERT_TEXT_FETCH.execute(conn, {**row, "fetch_record": fetch})
    add_bands(sess, posting.id, draft.simhash)
    alerts = raise_alerts(sess, posting, draft.findings, locked=locked, reads=reads)
    return StoreResult(posting.id, True, alerts, len(draft.findings))


def store_posting(db: Database, settings: Settings, draft: PostingDraft) -> StoreResult:
    """Store a detected posting with its findings, alerts and outbox in one transaction.

    Idempotent per (source, URL): storing it again returns the stored row (``new`` False). A transient
    database error (lost connection, serialization failure, SQLite's write lock) runs the transaction
    again, a bounded number of times (core.db.retry_transient); any other error is raised, never hidden.
    """
    raw = draft.raw or draft.text.encode("utf-8")
    evidence = write_evidence(settings, raw)
    fetch = _fetch_outside(db, settings, draft)
    what = f"storing {draft.url[:200]}"
    try:
        return db.run(
            lambda sess: _store_draft(sess, draft, evidence, len(raw), fetch, {}, TenantReads()), what=what
        )
    except IntegrityError:
        # A concurrent run stored the same (source, url) first; any other violation is a real failure.
        pid = db.run_read(_stored_before(draft), what=what)
        if pid is None:
            raise
        return StoreResult(pid, False, 0, 0)


def store_postings(
    db: Database, settings: Settings, drafts: Sequence[PostingDraft]
) -> list[StoreResult | Exception]:
    """`store_posting` for a crawl's batch: what each posting's own transaction would have stored, in one
    transaction, with one disk flush for the batch's evidence; each posting's result, or the error that
    kept it from being stored.

    Why: a crawl paid a commit (its WAL pages, on PostgreSQL a WAL flush) and an fsync per posting. The
    postings are stored in order, so a later one sees an earlier one of the batch (a repost joins its
    alert). The leak-decision locks of the whole batch are taken first, in one sorted order
    (pipelines.leaklock), so two batches, or a batch and a single posting, never wait on each other in a
    cycle. When the batch fails for a reason that is not transient (a concurrent run stored one of its
    URLs first, one bad value), each posting is stored alone, so one posting's failure is its own."""
    if len(drafts) <= 1:
        return [_stored_alone(db, settings, d) for d in drafts]
    try:
        raws = [d.raw or d.text.encode("utf-8") for d in drafts]
        evidence = put_blobs(as_store(settings), raws)
        fetches = [_fetch_outside(db, settings, d) for d in drafts]

        def work(sess: Session) -> list[StoreResult | Exception]:
            lock_leak_decisions_many(
                sess, [({f.tenant_id for f in d.findings}, d.simhash, d.content_hash) for d in drafts]
            )
            source_ids: dict[str, int] = {}
            reads = TenantReads()
            return [
                _store_draft(sess, d, ev, len(raw), fetch, source_ids, reads, locked=True)
                for d, ev, raw, fetch in zip(drafts, evidence, raws, fetches, strict=True)
            ]

        return db.run(work, what=f"storing {len(drafts)} postings from {drafts[0].url[:200]}")
    except Exception as exc:
        if is_transient(exc):  # retried already (Database.run): the database is away for all of them
            return [exc for _ in drafts]
        log.info("a batch of %d postings failed (%s); storing each alone", len(drafts), exc)
        return [_stored_alone(db, settings, d) for d in drafts]


def _stored_alone(db: Database, settings: Settings, draft: PostingDraft) -> StoreResult | Exception:
    try:
        return store_posting(db, settings, draft)
    except Exception as exc:
        return exc


def _fetch_to_keep(settings: Settings, draft: PostingDraft) -> dict[str, Any] | None:
    """The posting's fetch record as kept (core.fetch_record), or None when it cannot be (its screenshot
    not stored, a value that is not JSON): that loses the exchange in the evidence package (which then
    says so), never the posting."""
    try:
        data = prepare_fetch_record(settings, draft.fetch or {})
        json.dumps(data)
    except (OSError, TypeError, ValueError) as exc:
        log.warning("fetch record of %s not kept: %s", draft.url[:200], exc)
        return None
    return data


# Statements of the storing path, built once: building and compiling a statement cost several times
# what SQLite takes to run it, and a crawl runs a dozen per posting. They run on the session's
# connection (the same transaction), with parameters.
#: The smallest id of the tenant's alerts with a sighting on an earlier copy, looked for from the copies'
#: sightings (an index search each): ORDER BY alert LIMIT 1 over the join walked the tenant's alerts one
#: by one (54 ms at 100k alerts when no copy had one).
_EXISTING_LEAK = select(func.min(Alert.id)).where(
    Alert.tenant_id == bindparam("tenant_id"),
    Alert.id.in_(
        select(Sighting.alert_id).where(Sighting.posting_id.in_(bindparam("reposted", expanding=True)))
    ),
)
_TOUCH_ALERT = Prepared(
    update(Alert).where(Alert.id == bindparam("alert_id")).values(last_seen=bindparam("seen_at"))
)
_FINDING_COLUMNS = (
    "posting_id",
    "tenant_id",
    "alert_id",
    "kind",
    "record_key",
    "fields",
    "watch",
    "watch_id",
    "overlap",
    "line",
    "severity",
    "masked",
    "technique",
)
_INSERT_FINDINGS = Prepared(insert(Finding), _FINDING_COLUMNS)
_INSERT_SIGHTING = Prepared(insert(Sighting), ("alert_id", "posting_id", "url", "seen_at"))
_INSERT_ALERT = Prepared(
    insert(Alert),
    (
        "tenant_id",
        "posting_id",
        "severity",
        "status",
        "kinds",
        "records",
        "new_records",
        "first_seen",
        "last_seen",
    ),
    returning_id=True,
)
#: event_type, status, attempts, created_at: the columns' defaults (filled in per row, as SQLAlchemy did)
_INSERT_DELIVERIES = Prepared(insert(Delivery), ("alert_id", "subscription_id", "event_id"))
_SILENCED = select(Suppression.key).where(
    Suppression.tenant_id == bindparam("tenant_id"), Suppression.key.in_(bindparam("keys", expanding=True))
)
_SEEN_RECORDS = select(Finding.record_key).where(
    Finding.tenant_id == bindparam("tenant_id"),
    Finding.kind == "record",
    Finding.record_key.in_(bindparam("keys", expanding=True)),
)
_HAS_SUPPRESSIONS = Prepared(
    select(Suppression.id).where(Suppression.tenant_id == bindparam("tenant_id")).limit(1)
)
_TENANT_SETTINGS = Prepared(select(Tenant.settings).where(Tenant.id == bindparam("tenant_id")))
_SUBSCRIPTIONS = Prepared(
    select(Subscription.id, Subscription.digest, Subscription.min_severity, Subscription.kinds).where(
        Subscription.tenant_id == bindparam("tenant_id"), Subscription.enabled.is_(True)
    )
)


@dataclass
class TenantReads:
    """What deciding alerts reads of a tenant, read once per transaction (a crawl's batch decides dozens
    of postings' alerts in one): whether it marked anything false positive, its settings, its
    subscriptions. Read inside the transaction, like the statements they replace."""

    suppressions: dict[int, bool] = field(default_factory=dict)
    settings: dict[int, Any] = field(default_factory=dict)
    subscriptions: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)

    def has_suppressions(self, conn: Any, tenant_id: int) -> bool:
        if tenant_id not in self.suppressions:
            found = _HAS_SUPPRESSIONS.scalar(conn, {"tenant_id": tenant_id}) is not None
            self.suppressions[tenant_id] = found
        return self.suppressions[tenant_id]

    def tenant_settings(self, conn: Any, tenant_id: int) -> Any:
        if tenant_id not in self.settings:
            self.settings[tenant_id] = _TENANT_SETTINGS.scalar(conn, {"tenant_id": tenant_id})
        return self.settings[tenant_id]

    def tenant_subscriptions(self, conn: Any, tenant_id: int) -> list[tuple[Any, ...]]:
        if tenant_id not in self.subscriptions:
            self.subscriptions[tenant_id] = _SUBSCRIPTIONS.rows(conn, {"tenant_id": tenant_id})
        return self.subscriptions[tenant_id]


def _existing_leak(sess: Session, tenant_id: int, reposted: list[int]) -> int | None:
    """The id of the tenant's alert for the leak this posting reposts, if any."""
    if not reposted:
        return None
    found: int | None = sess.connection().scalar(
        _EXISTING_LEAK, {"tenant_id": tenant_id, "reposted": reposted}
    )
    return found


def add_findings(
    sess: Session, posting_id: int, tenant_id: int, alert_id: int, found: list[DetectedFinding]
) -> None:
    if not found:
        return
    # one executemany statement instead of an ORM object per finding (a dump can hold hundreds)
    _INSERT_FINDINGS.executemany(
        sess.connection(),
        [
            {
                "posting_id": posting_id,
                "tenant_id": tenant_id,
                "alert_id": alert_id,
                "kind": f.kind,
                "record_key": f.record_key,
                "fields": list(f.fields),
                "watch": f.watch,
                "watch_id": f.watch_id,
                "overlap": f.overlap,
                "line": f.line,
                "severity": f.severity,
                "masked": f.masked,
                "technique": f.technique,
            }
            for f in found
        ],
    )


def _unsuppressed(
    sess: Session, tenant_id: int, found: list[DetectedFinding], content_hash: str, reads: TenantReads
) -> list[DetectedFinding]:
    """Drop findings a tenant marked false positive on this same content."""
    if not reads.has_suppressions(sess.connection(), tenant_id):  # most tenants: no look-up per finding
        return found
    keys = {suppression_key(f.kind, f.watch_id, f.record_key, content_hash): f for f in found}
    if not keys:
        return found
    silenced = set(sess.connection().scalars(_SILENCED, {"tenant_id": tenant_id, "keys": list(keys)}))
    return [f for k, f in keys.items() if k not in silenced] if silenced else found


def raise_alerts(
    sess: Session,
    posting: Posting | StoredPosting,
    findings: list[DetectedFinding],
    reposted: list[int] | None = None,
    *,
    locked: bool = False,
    reads: TenantReads | None = None,
) -> int:
    """One alert per (tenant, leak): a repost joins the leak's alert as a sighting and notifies no one again.

    ``posting`` must be flushed (it has an id). The decision is serialised per tenant and near-duplicate
    band (pipelines.leaklock): the earlier copies are looked up only once the lock is held, so a copy
    stored at the same moment by another process is seen. ``reposted``: earlier copies already known.
    ``locked``: the transaction holds those locks already (`store_postings` takes a batch's at once);
    ``reads``: the tenants' rows this transaction has read already (`TenantReads`).
    """
    reads = reads if reads is not None else TenantReads()
    by_tenant: dict[int, list[DetectedFinding]] = defaultdict(list)
    for finding in findings:
        by_tenant[finding.tenant_id].append(finding)
    if not by_tenant:
        return 0
    sess.flush()  # what the session holds must be in the transaction before the statements below read it
    conn = sess.connection()
    if not locked:
        lock_leak_decisions(sess, by_tenant, posting.simhash, posting.content_hash)
    copies = near_duplicates(sess, posting.simhash, posting.content_hash, exclude=posting.id)
    reposted = sorted(set(reposted or ()) | set(copies))
    pause_for_tests()
    created = 0
    for tenant_id, unfiltered in by_tenant.items():
        found = _unsuppressed(sess, tenant_id, unfiltered, posting.content_hash, reads)
        if not found:
            continue
        existing = _existing_leak(sess, tenant_id, reposted)
        if existing is not None:
            seen_at = posting.fetched or utcnow()
            _INSERT_SIGHTING.execute(
                conn, {"alert_id": existing, "posting_id": posting.id, "url": posting.url, "seen_at": seen_at}
            )
            _TOUCH_ALERT.execute(conn, {"alert_id": existing, "seen_at": seen_at})
            loaded = sess.identity_map.get(sess.identity_key(Alert, existing))
            if loaded is not None:  # an Alert the caller holds in this session sees the new last_seen
                set_committed_value(loaded, "last_seen", seen_at)
            add_findings(sess, posting.id, tenant_id, existing, found)
            continue
        record_keys = {f.record_key for f in found if f.kind == "record" and f.record_key}
        seen_before = (
            set(conn.scalars(_SEEN_RECORDS, {"tenant_id": tenant_id, "keys": sorted(record_keys)}))
            if record_keys
            else set()
        )
        kinds = sorted({f.kind for f in found})
        tenant_settings = reads.tenant_settings(conn, tenant_id)
        thresholds = (tenant_settings or {}).get("severity_thresholds")
        new_records = len(record_keys - seen_before)
        severity = tenant_severity(
            len(record_keys), new_records, kinds, (f.severity for f in found), thresholds
        )
        first_seen = posting.fetched or utcnow()
        alert_id = _INSERT_ALERT.insert(
            conn,
            {
                "tenant_id": tenant_id,
                "posting_id": posting.id,
                "severity": severity,
                "status": "new",
                "kinds": kinds,
                "records": len(record_keys),
                "new_records": new_records,
                "first_seen": first_seen,
                "last_seen": first_seen,
            },
        )
        _INSERT_SIGHTING.execute(
            conn, {"alert_id": alert_id, "posting_id": posting.id, "url": posting.url, "seen_at": first_seen}
        )
        add_findings(sess, posting.id, tenant_id, alert_id, found)
        view = {"severity": severity, "kinds": kinds}
        deliveries = [
            {"alert_id": alert_id, "subscription_id": sub_id, "event_id": str(uuid.uuid4())}
            for sub_id, digest, min_severity, sub_kinds in reads.tenant_subscriptions(conn, tenant_id)
            # Digest subscriptions hear of it in their next digest, not now.
            if digest is None and passes_filters(view, min_severity=min_severity, kinds=sub_kinds)
        ]
        _INSERT_DELIVERIES.executemany(conn, deliveries)
        created += 1
    return created


class StorePipeline:
    """The crawl's last item pipeline: stores postings in batches, then feeds the candidate and search indexes.

    Batches: a posting waits until `store_batch` postings (or `store_batch_bytes` of them) are waiting, or
    `store_batch_wait_s` has passed since the first, and the batch is stored at once (`store_postings`:
    one transaction, one disk flush); each posting leaves the pipeline once it is stored. Scrapy keeps
    fetching meanwhile, so a busy crawl fills its batches and a quiet one waits a fraction of a second.

    A posting that cannot be stored (after the transient-error retries) is an error of the run: the
    crawl stops (reason ``store_failed``), the run is recorded failed with the reason, and the source's
    cursor stays where it was, so the next run fetches that posting again (crawlers.job).
    """

    def __init__(self, settings: Settings, stats: Any = None, crawler: Any = None) -> None:
        self.settings = settings
        self.db = open_database(settings)
        self.stats = stats
        self.crawler = crawler
        self.candidates = CandidateIndex(settings.index_dir / "candidates")
        self.search = SearchIndexer(settings, self.db)
        self.store_failed = 0
        self._batches: ItemBatches[PostingDraft] = ItemBatches(
            self.store_items,
            size=settings.store_batch,
            wait_s=settings.store_batch_wait_s,
            max_bytes=settings.store_batch_bytes,
            what="postings to store",
        )

    def open_spider(self, spider: Any = None) -> None:
        """Index what earlier runs of this source stored but never indexed (killed mid-run)."""
        spider = spider or getattr(self.crawler, "spider", None)  # Scrapy no longer passes it
        name = getattr(spider, "source_name", "")
        if not name:
            return
        try:
            job_ids, rows = unindexed_postings(self.db, name)
        except Exception as exc:  # the next run tries again; this one still crawls
            log.warning("could not look for postings left unindexed by earlier runs: %s", exc)
            return
        for posting_id, blob, draft in rows:
            self.candidates.add(posting_id, blob)
            self.search.add(posting_id, draft)
        self.candidates.flush()
        self.search.flush()
        mark_indexed(self.db, job_ids)
        if rows:
            log.info("indexed %d postings stored by %d interrupted runs", len(rows), len(job_ids))

    def close_spider(self, spider: Any = None) -> None:
        self.flush()  # Scrapy closes once every item is through; nothing should be waiting
        self.candidates.flush()
        self.search.flush()
        if self.stats is not None:
            self.stats.set_value(INDEXED_STAT, 1)

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(load_settings(), crawler.stats, crawler)

    def _failed(self, item: PostingDraft, exc: Exception) -> None:
        self.store_failed += 1
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:240]
        message = f"posting {item.url} could not be stored ({reason}); the cursor stays for the next run"
        log.error("%s", message)
        if self.stats is not None:
            self.stats.inc_value(STORE_FAILED_STAT)
            if self.stats.get_value(STORE_ERROR_STAT) is None:
                self.stats.set_value(STORE_ERROR_STAT, message)
        spider = getattr(self.crawler, "spider", None)
        engine = getattr(self.crawler, "engine", None)
        if engine is not None and spider is not None and self.store_failed == 1:
            engine.close_spider(spider, "store_failed")

    def _keep_fetch(self, posting_id: int, item: PostingDraft) -> None:
        """Keep the HTTP exchange beside the evidence (core.fetch_record); a failure loses only the
        headers in the evidence package (which then says so), never the posting."""
        try:
            write_fetch_record(self.settings, posting_id, item.fetch or {})
        except (OSError, TypeError, ValueError) as exc:
            log.warning("fetch record of posting %s not kept: %s", posting_id, exc)

    async def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, PostingDraft):
            return item
        return await self._batches.submit(item, len(item.raw) or len(item.text))

    def flush(self) -> None:
        """Store the waiting postings now, and let each go on (or be dropped, if it could not be stored)."""
        self._batches.flush()

    def store_items(self, items: list[PostingDraft]) -> list[Any]:
        """Store these postings as one batch: each item, filled in, or the DropItem that replaces one that
        could not be stored. (The synchronous core of `process_item`; tests call it directly.)"""
        out: list[Any] = []
        for item, result in zip(items, store_postings(self.db, self.settings, items), strict=True):
            if isinstance(result, Exception):
                # only crawls get here; scan and tips never import Scrapy
                from scrapy.exceptions import DropItem

                self._failed(item, result)
                dropped = DropItem(f"not stored: {item.url}")
                dropped.__cause__ = result
                out.append(dropped)
                continue
            item.posting_id = result.posting_id
            item.is_new = result.new
            if result.new and item.fetch and not item.text:  # with text, store_posting kept it in the row
                self._keep_fetch(result.posting_id, item)
            item.alerts_created = result.alerts
            if result.new:
                self.candidates.add(result.posting_id, item.candidate_hashes)
                self.search.add(result.posting_id, item)
            if self.stats is not None:
                self.stats.inc_value("leaksentinel/postings")
                if result.new:
                    self.stats.inc_value("leaksentinel/new")
                    self.stats.inc_value("leaksentinel/matches", result.findings)
                    self.stats.inc_value("leaksentinel/alerts", result.alerts)
            out.append(item)
        return out
