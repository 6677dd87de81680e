"""The candidate index: which stored postings hold a given hash, for retroactive matching.

Why segments: every crawl process appends its own sorted segment file of (hash prefix, posting id)
pairs, so writers never contend; a lookup binary-searches each segment. When records are registered
later, their hashes find the postings that already held them without re-reading any posting's text.
Segments are merged when there are many; the postings' stored candidate blobs can rebuild everything.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from sqlalchemy import select

from core.db import Database
from core.models import Posting
from pipelines.detection.index import sorted_unique

__all__ = ["CandidateIndex", "unpack_prefixes"]

_PAIR = np.dtype([("prefix", "<u8"), ("posting", "<u8")])
_lock = threading.Lock()


def unpack_prefixes(blob: bytes | None) -> np.ndarray:
    """The 64-bit prefixes of a posting's packed 16-byte candidate hashes."""
    if not blob:
        return np.zeros(0, dtype="<u8")
    raw = np.frombuffer(blob[: len(blob) - len(blob) % 16], dtype=">u8").reshape(-1, 2)[:, 0]
    return raw.astype("<u8")


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    """The pairs ordered by (prefix, posting): a lexsort of the two columns, about four times faster than
    sorting the structured array by its fields (a crawl's segment holds millions of pairs)."""
    return pairs[np.lexsort((pairs["posting"], pairs["prefix"]))]


class CandidateIndex:
    MAX_SEGMENTS = 64

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: list[np.ndarray] = []

    def add(self, posting_id: int, blob: bytes | None) -> None:
        prefixes = unpack_prefixes(blob)
        if prefixes.shape[0]:
            pairs = np.empty(prefixes.shape[0], dtype=_PAIR)
            pairs["prefix"] = prefixes
            pairs["posting"] = posting_id
            self._pending.append(pairs)

    def flush(self) -> None:
        """Write what was added as one sorted segment."""
        if not self._pending:
            return
        pairs = np.concatenate(self._pending)
        self._pending = []
        self._write(_sorted_pairs(pairs))
        if len(self.segments()) > self.MAX_SEGMENTS:
            self.compact()

    def _write(self, pairs: np.ndarray) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"seg-{uuid.uuid4().hex}.pairs"
        tmp = self.directory / f".{name}.tmp"
        pairs.tofile(tmp)
        os.replace(tmp, self.directory / name)
        return self.directory / name

    def segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("seg-*.pairs"))

    def compact(self) -> None:
        with _lock:
            segs = self.segments()
            if len(segs) < 2:
                return
            merged = np.concatenate([np.fromfile(p, dtype=_PAIR) for p in segs])
            self._write(np.unique(merged))
            for p in segs:
                p.unlink(missing_ok=True)

    def postings_with(self, prefixes: Iterable[int] | np.ndarray) -> set[int]:
        """Ids of postings holding any of these prefixes."""
        wanted = sorted_unique(
            np.asarray(list(prefixes) if not isinstance(prefixes, np.ndarray) else prefixes, dtype="<u8")
        )
        found: set[int] = set()
        if wanted.shape[0] == 0:
            return found
        for seg in self.segments():
            try:
                pairs = np.memmap(seg, dtype=_PAIR, mode="r")
            except (OSError, ValueError):  # compacted away meanwhile, or empty
                continue
            keys = pairs["prefix"]
            lo = np.searchsorted(keys, wanted, side="left")
            hi = np.searchsorted(keys, wanted, side="right")
            for a, b in zip(lo[hi > lo], hi[hi > lo], strict=True):
                found.update(int(x) for x in pairs["posting"][a:b])
        return found

    def rebuild(self, db: Database, batch: int = 10_000) -> None:
        """Recreate every segment from the postings' stored candidate blobs."""
        for seg in self.segments():
            seg.unlink(missing_ok=True)
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
