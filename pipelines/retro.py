"""Retroactive matching: records registered today are found in postings stored before.

Why through the candidate index: only postings that held one of the new hashes are looked at again
(their stored text is re-detected for that tenant), so the cost follows the hits, not the archive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from core.db import Database
from core.hashing import load_or_create_key
from core.models import Alert, Finding, Posting, Sighting
from core.settings import Settings
from pipelines.detection.candidates import CandidateIndex
from pipelines.detection.engine import Detector
from pipelines.neardup import near_duplicates
from pipelines.store import add_findings, raise_alerts

__all__ = ["RetroResult", "retro_match"]

MAX_POSTINGS = 50_000


@dataclass(frozen=True)
class RetroResult:
    postings: int
    findings: int
    alerts: int


def retro_match(db: Database, settings: Settings, tenant_id: int, prefixes: np.ndarray) -> RetroResult:
    posting_ids = sorted(CandidateIndex(settings.index_dir / "candidates").postings_with(prefixes))[
        :MAX_POSTINGS
    ]
    if not posting_ids:
        return RetroResult(0, 0, 0)
    detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
    findings_added = alerts_added = 0
    for posting_id in posting_ids:
        with db.session() as sess:
            text = sess.scalar(select(Posting.text).where(Posting.id == posting_id))
        if text is None:
            continue
        # Detect outside the write transaction: the lookup opens its own (SQLite allows one writer).
        found = [f for f in detector.detect(text).findings if f.tenant_id == tenant_id]
        if not found:
            continue
        with db.session() as sess:
            posting = sess.get(Posting, posting_id)
            if posting is None:
                continue
            known = set(
                sess.scalars(
                    select(Finding.record_key).where(
                        Finding.posting_id == posting_id,
                        Finding.tenant_id == tenant_id,
                        Finding.kind == "record",
                    )
                )
            )
            new = [f for f in found if f.kind == "record" and f.record_key not in known]
            if not new:
                continue
            findings_added += len(new)
            alert = sess.scalar(
                select(Alert)
                .join(Sighting, Sighting.alert_id == Alert.id)
                .where(Alert.tenant_id == tenant_id, Sighting.posting_id == posting_id)
                .limit(1)
            )
            if alert is not None:
                add_findings(sess, posting_id, tenant_id, alert.id, new)
                keys = set(
                    sess.scalars(
                        select(Finding.record_key).where(
                            Finding.alert_id == alert.id, Finding.kind == "record"
                        )
                    )
                )
                alert.records = len(keys | {f.record_key for f in new if f.record_key})
                continue
            reposted = near_duplicates(sess, posting.simhash, posting.content_hash, exclude=posting_id)
            alerts_added += raise_alerts(sess, posting, new, reposted)
    return RetroResult(len(posting_ids), findings_added, alerts_added)
