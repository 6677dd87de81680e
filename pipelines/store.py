"""Pipeline stage 4: store the posting, its findings and alerts, and the outbox, in one transaction.

Why one transaction: an alert and its delivery rows exist if and only if the posting does, so a crash
between "found" and "delivered" loses nothing (the relay picks the outbox up) and a posting is never
alerted twice (its (source, URL) is unique).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import Database, open_database
from core.models import (
    Alert,
    Delivery,
    Finding,
    Posting,
    Sighting,
    Source,
    Subscription,
    Suppression,
    Tenant,
    utcnow,
)
from core.policy import passes_filters, suppression_key, tenant_severity
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from pipelines.detection.candidates import CandidateIndex
from pipelines.detection.engine import Finding as DetectedFinding
from pipelines.neardup import add_bands, near_duplicates
from pipelines.search_index import SearchIndexer

__all__ = ["StorePipeline", "StoreResult", "add_findings", "raise_alerts", "store_posting", "write_evidence"]

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


def write_evidence(evidence_dir: Path, raw: bytes) -> str:
    """Keep the raw bytes content-addressed (``ab/abcdef...``); returns the SHA-256."""
    digest = hashlib.sha256(raw).hexdigest()
    path = evidence_dir / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, path)
    return digest


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


def store_posting(db: Database, settings: Settings, draft: PostingDraft) -> StoreResult:
    raw = draft.raw or draft.text.encode("utf-8")
    evidence = write_evidence(settings.evidence_dir, raw)
    try:
        with db.session() as sess:
            source_id = _source_id(sess, draft.source)
            existing = sess.scalar(
                select(Posting.id).where(Posting.source_id == source_id, Posting.url == draft.url)
            )
            if existing is not None:
                return StoreResult(existing, False, 0, 0)
            posting = Posting(
                source_id=source_id,
                url=draft.url,
                title=draft.title,
                author=draft.author,
                published=draft.published,
                fetched=draft.fetched,
                content_hash=draft.content_hash,
                simhash=draft.simhash,
                evidence_sha256=evidence,
                size=len(raw),
                text=draft.text,
                candidate_hashes=draft.candidate_hashes or None,
            )
            reposted = near_duplicates(sess, draft.simhash, draft.content_hash)
            sess.add(posting)
            sess.flush()
            add_bands(sess, posting.id, draft.simhash)
            alerts = raise_alerts(sess, posting, draft.findings, reposted)
            return StoreResult(posting.id, True, alerts, len(draft.findings))
    except IntegrityError:  # a concurrent run stored the same (source, url) first
        with db.session() as sess:
            source_id = _source_id(sess, draft.source)
            pid = sess.scalar(
                select(Posting.id).where(Posting.source_id == source_id, Posting.url == draft.url)
            )
        return StoreResult(int(pid or 0), False, 0, 0)


def _existing_leak(sess: Session, tenant_id: int, reposted: list[int]) -> Alert | None:
    """The tenant's alert for the leak this posting reposts, if any."""
    if not reposted:
        return None
    return sess.scalar(
        select(Alert)
        .join(Sighting, Sighting.alert_id == Alert.id)
        .where(Alert.tenant_id == tenant_id, Sighting.posting_id.in_(reposted))
        .order_by(Alert.id)
        .limit(1)
    )


def add_findings(
    sess: Session, posting_id: int, tenant_id: int, alert_id: int, found: list[DetectedFinding]
) -> None:
    for f in found:
        sess.add(
            Finding(
                posting_id=posting_id,
                tenant_id=tenant_id,
                alert_id=alert_id,
                kind=f.kind,
                record_key=f.record_key,
                fields=list(f.fields),
                watch=f.watch,
                watch_id=f.watch_id,
                overlap=f.overlap,
                line=f.line,
                severity=f.severity,
                masked=f.masked,
                technique=f.technique,
            )
        )


def _unsuppressed(
    sess: Session, tenant_id: int, found: list[DetectedFinding], content_hash: str
) -> list[DetectedFinding]:
    """Drop findings a tenant marked false positive on this same content."""
    keys = {suppression_key(f.kind, f.watch_id, f.record_key, content_hash): f for f in found}
    if not keys:
        return found
    silenced = set(
        sess.scalars(
            select(Suppression.key).where(Suppression.tenant_id == tenant_id, Suppression.key.in_(list(keys)))
        )
    )
    return [f for k, f in keys.items() if k not in silenced] if silenced else found


def raise_alerts(
    sess: Session, posting: Posting, findings: list[DetectedFinding], reposted: list[int]
) -> int:
    """One alert per (tenant, leak): a repost joins the leak's alert as a sighting and notifies no one again."""
    by_tenant: dict[int, list[DetectedFinding]] = defaultdict(list)
    for finding in findings:
        by_tenant[finding.tenant_id].append(finding)
    created = 0
    for tenant_id, unfiltered in by_tenant.items():
        found = _unsuppressed(sess, tenant_id, unfiltered, posting.content_hash)
        if not found:
            continue
        existing = _existing_leak(sess, tenant_id, reposted)
        if existing is not None:
            seen_at = posting.fetched or utcnow()
            sess.add(Sighting(alert_id=existing.id, posting_id=posting.id, url=posting.url, seen_at=seen_at))
            existing.last_seen = seen_at
            add_findings(sess, posting.id, tenant_id, existing.id, found)
            continue
        record_keys = {f.record_key for f in found if f.kind == "record" and f.record_key}
        seen_before = (
            set(
                sess.scalars(
                    select(Finding.record_key).where(
                        Finding.tenant_id == tenant_id,
                        Finding.kind == "record",
                        Finding.record_key.in_(record_keys),
                    )
                )
            )
            if record_keys
            else set()
        )
        kinds = sorted({f.kind for f in found})
        tenant = sess.get(Tenant, tenant_id)
        thresholds = (tenant.settings or {}).get("severity_thresholds") if tenant is not None else None
        new_records = len(record_keys - seen_before)
        alert = Alert(
            tenant_id=tenant_id,
            posting_id=posting.id,
            severity=tenant_severity(
                len(record_keys), new_records, kinds, (f.severity for f in found), thresholds
            ),
            status="new",
            kinds=kinds,
            records=len(record_keys),
            new_records=new_records,
            first_seen=posting.fetched or utcnow(),
            last_seen=posting.fetched or utcnow(),
        )
        sess.add(alert)
        sess.flush()
        sess.add(
            Sighting(alert_id=alert.id, posting_id=posting.id, url=posting.url, seen_at=alert.first_seen)
        )
        add_findings(sess, posting.id, tenant_id, alert.id, found)
        subs = sess.scalars(
            select(Subscription).where(Subscription.tenant_id == tenant_id, Subscription.enabled.is_(True))
        )
        view = {"severity": alert.severity, "kinds": kinds}
        for sub in subs:
            # Digest subscriptions hear of it in their next digest, not now.
            if sub.digest is None and passes_filters(view, min_severity=sub.min_severity, kinds=sub.kinds):
                sess.add(Delivery(alert_id=alert.id, subscription_id=sub.id, event_id=str(uuid.uuid4())))
        created += 1
    return created


class StorePipeline:
    def __init__(self, settings: Settings, stats: Any = None) -> None:
        self.settings = settings
        self.db = open_database(settings)
        self.stats = stats
        self.candidates = CandidateIndex(settings.index_dir / "candidates")
        self.search = SearchIndexer(settings, self.db)

    def close_spider(self, spider: Any = None) -> None:
        self.candidates.flush()
        self.search.flush()

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(load_settings(), crawler.stats)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, PostingDraft):
            return item
        result = store_posting(self.db, self.settings, item)
        item.posting_id = result.posting_id
        item.is_new = result.new
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
        return item
