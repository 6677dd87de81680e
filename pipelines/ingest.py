"""The item pipelines run outside Scrapy: for `scan` (and `--store`) and the tip line.

Why one place: a local file or a reported text must go through exactly the stages a crawled posting
goes through (normalise, fingerprint, detect, store with its outbox, candidate and search indexes), so
these callers share this class instead of each wiring the stages again.
"""

from __future__ import annotations

from core.db import Database
from core.hashing import load_or_create_key
from core.posting import PostingDraft
from core.settings import Settings
from pipelines.detect import detect_draft
from pipelines.detection.candidates import CandidateIndex
from pipelines.detection.engine import Detector
from pipelines.fingerprint import FingerprintPipeline
from pipelines.normalize import NormalizePipeline
from pipelines.search_index import SearchIndexer
from pipelines.store import StoreResult, store_posting

__all__ = ["Ingest"]


class Ingest:
    """``with Ingest(settings, db) as ingest: ingest.detect(draft); ingest.store(draft)``."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
        self.normalize = NormalizePipeline(settings)
        self.fingerprint = FingerprintPipeline()
        self.candidates = CandidateIndex(settings.index_dir / "candidates")
        self.search = SearchIndexer(settings, db)

    def detect(
        self, draft: PostingDraft, *, fingerprint: bool = True, candidates: bool = True
    ) -> PostingDraft:
        """Normalise, fingerprint and detect: what `scan` reports, storing nothing.

        ``fingerprint=False``: no content hash and SimHash (about a tenth of a scan's CPU) for a caller that
        only reports findings, which never read them; `store` fingerprints a draft that has none.
        ``candidates=False``: only the registered field types are hashed and no candidate hash is kept
        (the same findings): for a draft that will not be stored."""
        self.normalize.apply(draft)
        if fingerprint:
            self.fingerprint.apply(draft)
        return detect_draft(self.detector, draft, candidates=candidates)

    def store(self, draft: PostingDraft) -> StoreResult:
        """Keep a detected draft as a crawl would: posting, findings, alerts and outbox, then its indexes."""
        if not draft.candidates_kept:
            raise ValueError("a draft detected with candidates=False holds no candidate hashes: not stored")
        if not draft.content_hash:  # detected without its fingerprint: a stored posting needs it
            self.fingerprint.apply(draft)
        result = store_posting(self.db, self.settings, draft)
        if result.new:
            self.candidates.add(result.posting_id, draft.candidate_hashes)
            self.search.add(result.posting_id, draft)
        return result

    def flush(self) -> None:
        """Write the candidate segment and the search batch (once per run, not per posting)."""
        self.candidates.flush()
        self.search.flush()

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
