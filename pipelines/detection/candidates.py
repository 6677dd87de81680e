"""The candidate index: which stored postings hold a given hash, for retroactive matching.

Why segments: every crawl process appends its own sorted segment file of (hash prefix, posting id)
pairs, so writers never contend; a lookup binary-searches each segment. When records are registered
later, their hashes find the postings that already held them without re-reading any posting's text.
Segments are merged when there are many (core.pair_segments); the postings' stored candidate blobs can
rebuild everything.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
from sqlalchemy import select

from core.db import Database
from core.models import Posting
from core.pair_segments import PAIR, PairSegments

__all__ = ["CandidateIndex", "unpack_prefixes"]

_PAIR = PAIR  # (prefix, posting id) as stored: leaksentinel.backup reads the segments


def unpack_prefixes(blob: bytes | None) -> np.ndarray:
    """The 64-bit prefixes of a posting's packed 16-byte candidate hashes."""
    if not blob:
        return np.zeros(0, dtype="<u8")
    raw = np.frombuffer(blob[: len(blob) - len(blob) % 16], dtype=">u8").reshape(-1, 2)[:, 0]
    return raw.astype("<u8")


class CandidateIndex(PairSegments):
    """The segments of (candidate hash prefix, posting id) pairs in ``index/candidates``."""

    def add(self, posting_id: int, blob: bytes | None) -> None:
        self.add_keys(posting_id, unpack_prefixes(blob))

    def rebuild(self, db: Database, batch: int = 10_000) -> None:
        """Recreate every segment from the postings' stored candidate blobs."""
        self.clear()
        top = 0
        with db.session() as sess:
            rows = sess.execute(
                select(Posting.id, Posting.candidate_hashes).execution_options(yield_per=batch)
            )
            for posting_id, blob in rows:
                self.add(posting_id, blob)
                top = max(top, posting_id)
        self.flush()
        self.compact()
        self._mark(top)

    #: Postings below the high-water mark that another transaction may still have been committing when
    #: the mark was taken (ids are handed out before commit): each sync reads these again.
    SYNC_OVERLAP = 1_000

    def sync(self, db: Database, batch: int = 10_000) -> int:
        """Add the postings any machine of the fleet stored since this home's index last looked, from their
        stored candidate blobs; returns how many were read.

        Why: each home's segments hold what its own crawls wrote; in a fleet, records registered on machine
        B must also find postings crawled by A. The database is the shared truth, so the index catches up
        from it (ids above a high-water mark, less an overlap for transactions that committed late) before
        answering. Postings already indexed here are added again harmlessly (lookups return a set)."""
        last = self._marked()
        top, read = last, 0
        with db.read_session() as sess:
            rows = sess.execute(
                select(Posting.id, Posting.candidate_hashes)
                .where(Posting.id > max(0, last - self.SYNC_OVERLAP))
                .order_by(Posting.id)
                .execution_options(yield_per=batch)
            )
            for posting_id, blob in rows:
                self.add(posting_id, blob)
                top, read = max(top, posting_id), read + 1
        self.flush()
        self._mark(top)
        return read

    def _marked(self) -> int:
        try:
            return int((self.directory / "synced-id").read_text(encoding="ascii"))
        except (OSError, ValueError):
            return 0

    def _mark(self, top: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".synced-id.{uuid.uuid4().hex}.tmp"
        tmp.write_text(str(top), encoding="ascii")
        os.replace(tmp, self.directory / "synced-id")
