"""Pipeline stage 3: detection, the engine run on each posting's text."""

from __future__ import annotations

import logging
from typing import Any

from core import telemetry
from core.db import open_database, retry_transient
from core.hashing import load_or_create_key
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from pipelines.detection.engine import Detector

__all__ = ["DetectPipeline", "detect_draft"]

log = logging.getLogger(__name__)


def detect_draft(detector: Detector, draft: PostingDraft) -> PostingDraft:
    elapsed = telemetry.timed()
    result = detector.detect(draft.text)
    telemetry.count_scan(len(draft.raw) or len(draft.text), elapsed())  # scan MB/s in /metrics
    draft.findings = result.findings
    draft.candidate_hashes = result.candidate_hashes
    draft.partial = result.partial
    if result.partial:
        log.warning("detection on %s hit its time limit: the end of the posting was not read", draft.url)
    return draft


class DetectPipeline:
    def __init__(self, settings: Settings) -> None:
        db = open_database(settings)
        self.detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)

    @classmethod
    def from_crawler(cls, crawler: Any) -> DetectPipeline:
        return cls(load_settings())

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, PostingDraft):
            # The record lookup reads the database: a transient fault is waited out, not a lost posting.
            retry_transient(lambda: detect_draft(self.detector, item), what=f"detecting {item.url[:200]}")
            if item.partial and spider is not None and spider.crawler and spider.crawler.stats:
                spider.crawler.stats.inc_value("leaksentinel/partial_scans")
        return item
