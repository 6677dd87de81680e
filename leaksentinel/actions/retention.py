"""``leaksentinel purge``: posting text, search entries and evidence older than ``retention_days`` go,
unless an alert holds them.

Why keep the rows: ids, URLs and hashes are what alerts, sightings, repost detection (exact and
near-duplicate) and retro-match (candidate hashes) work from; only the leaked text itself, its search
entry and its raw bytes are what retention is about. A posting is held when it is an alert's first
posting or one of its sightings: the alert's evidence must stay.

Each batch deletes the search entries and evidence files first, then clears the text: a purge stopped
half-way leaves rows whose text is still there, and the next purge finds and finishes them. A purged
posting is one whose text is empty; its ``evidence_sha256`` stays as the record of what was fetched.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from core.db import Database
from core.errors import BadInput
from core.fetch_record import forget_fetch_record
from core.models import Alert, Posting, Sighting
from core.search import open_backend
from core.settings import Settings

__all__ = ["purge"]

BATCH = 500


def _held() -> Any:
    """Ids of postings an alert holds (its first posting, or a sighting of it)."""
    return select(Alert.posting_id).union(select(Sighting.posting_id))


def purge(
    db: Database, settings: Settings, *, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Purge what retention allows; with ``dry_run`` only count it. Returns the counts ``purge`` prints."""
    if settings.retention_days < 1:
        raise BadInput(f"retention_days must be at least 1, got {settings.retention_days}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.retention_days)
    old = Posting.fetched < cutoff
    not_purged = Posting.text != ""
    held_ids = _held()
    with db.session() as sess:
        held = sess.scalar(select(func.count()).where(old, Posting.id.in_(held_ids))) or 0
    result: dict[str, Any] = {"postings": 0, "search_entries": 0, "evidence_files": 0, "held_by_alerts": held}
    backend = None if dry_run else open_backend(settings)
    last = 0
    try:
        while True:
            with db.session() as sess:
                rows = sess.execute(
                    select(Posting.id, Posting.evidence_sha256)
                    .where(old, not_purged, Posting.id > last, Posting.id.not_in(held_ids))
                    .order_by(Posting.id)
                    .limit(BATCH)
                ).all()
            if not rows:
                break
            last = rows[-1][0]
            ids = [r[0] for r in rows]
            digests = {r[1] for r in rows if r[1]}
            files = _evidence_to_delete(db, settings, ids, digests)
            result["postings"] += len(ids)
            result["search_entries"] += len(ids)  # one entry per posting
            result["evidence_files"] += len(files)
            if backend is None:
                continue
            backend.delete(ids)
            for digest in files:
                with contextlib.suppress(FileNotFoundError):
                    (settings.evidence_dir / digest[:2] / digest).unlink()
            for posting_id, raw_digest in rows:  # the HTTP exchange and screenshot (core.fetch_record) go too
                forget_fetch_record(settings.evidence_dir, posting_id, raw_digest in files)
            with db.session() as sess:
                sess.execute(
                    update(Posting)
                    .where(Posting.id.in_(ids), Posting.id.not_in(_held()))  # an alert raised meanwhile wins
                    .values(text="")
                    .execution_options(synchronize_session=False)
                )
    finally:
        if backend is not None:
            backend.close()
    result["dry_run"] = dry_run
    return result


def _evidence_to_delete(db: Database, settings: Settings, ids: list[int], digests: set[str]) -> list[str]:
    """Evidence files of these postings that no other posting still keeping its text shares (the files are
    content-addressed: one file may back several postings)."""
    if not digests:
        return []
    with db.session() as sess:
        shared = set(
            sess.scalars(
                select(Posting.evidence_sha256).where(
                    Posting.evidence_sha256.in_(digests), Posting.id.not_in(ids), Posting.text != ""
                )
            )
        )
    return sorted(d for d in digests - shared if (settings.evidence_dir / d[:2] / d).exists())
