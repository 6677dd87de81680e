"""Pipeline stage 3: detection, the engine run on each posting's text (a crawl's postings in batches)."""

from __future__ import annotations

import logging
from typing import Any

from core import telemetry
from core.db import open_database, retry_transient
from core.hashing import load_or_create_key
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from pipelines.batching import ItemBatches
from pipelines.detection.engine import Detector

__all__ = ["DetectPipeline", "detect_draft"]

log = logging.getLogger(__name__)


def detect_draft(detector: Detector, draft: PostingDraft, *, candidates: bool = True) -> PostingDraft:
    """Fill the draft's findings; ``candidates=False``: hash only the registered field types and keep no
    candidate hashes (a draft that will not be stored)."""
    elapsed = telemetry.timed()
    result = detector.detect(draft.text, candidates=candidates)
    telemetry.count_scan(len(draft.raw) or len(draft.text), elapsed())  # scan MB/s in /metrics
    draft.findings = result.findings
    draft.candidate_hashes = result.candidate_hashes
    draft.candidates_kept = candidates
    draft.partial = result.partial
    if result.partial:
        log.warning("detection on %s hit its time limit: the end of the posting was not read", draft.url)
    return draft


class DetectPipeline:
    """Detects each posting; a crawl's postings wait for a batch (`detect_batch`, `detect_batch_wait_s`)
    and are detected back to back (pipelines.batching), each failing alone."""

    def __init__(self, settings: Settings, crawler: Any = None) -> None:
        db = open_database(settings)
        self.detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
        self.crawler = crawler
        self._batches: ItemBatches[PostingDraft] = ItemBatches(
            self.detect_items,
            size=settings.detect_batch,
            wait_s=settings.detect_batch_wait_s,
            what="postings to detect",
        )

    @classmethod
    def from_crawler(cls, crawler: Any) -> DetectPipeline:
        return cls(load_settings(), crawler)

    def detect_item(self, item: PostingDraft) -> PostingDraft:
        """One posting detected now. The record lookup reads the database: a transient fault is waited
        out, not a lost posting."""
        retry_transient(lambda: detect_draft(self.detector, item), what=f"detecting {item.url[:200]}")
        stats = getattr(self.crawler, "stats", None)
        if item.partial and stats is not None:
            stats.inc_value("leaksentinel/partial_scans")
        return item

    def detect_items(self, items: list[PostingDraft]) -> list[Any]:
        """Each posting detected, back to back: the posting, or the exception that fails it alone."""
        out: list[Any] = []
        for item in items:
            try:
                out.append(self.detect_item(item))
            except Exception as exc:  # Scrapy logs it with the item, and the run fails (LostItems)
                out.append(exc)
        return out

    async def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, PostingDraft):
            return item
        return await self._batches.submit(item)

    def close_spider(self, spider: Any = None) -> None:
        self._batches.flush()  # Scrapy closes once every item is through; nothing should be waiting
