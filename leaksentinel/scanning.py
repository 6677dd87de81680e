"""``leaksentinel scan``: the crawl pipeline's detection, run on local files.

Why the same stages: a finding from ``scan`` must be exactly what a crawl of the same text would
find, and ``--store`` must raise alerts exactly as a crawl would, so it calls the pipeline stages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.db import open_database
from core.errors import BadInput
from core.hashing import load_or_create_key
from core.posting import PostingDraft
from core.settings import Settings
from pipelines.detect import detect_draft
from pipelines.detection.candidates import CandidateIndex
from pipelines.detection.engine import Detector
from pipelines.fingerprint import FingerprintPipeline
from pipelines.normalize import NormalizePipeline
from pipelines.search_index import SearchIndexer
from pipelines.store import LOCAL_SOURCE, store_posting

__all__ = ["scan_paths"]


def _read(path: str, limit: int) -> bytes:
    p = Path(path)
    if not p.exists():
        raise BadInput(f"no such file: {path}")
    if p.is_dir():
        raise BadInput(f"{path} is a directory (give files)")
    with p.open("rb") as fh:
        return fh.read(limit)


def scan_paths(settings: Settings, paths: list[str], *, store: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the contract's finding objects, file by file, in order."""
    for path in paths:  # every path is checked before any is scanned
        if not Path(path).is_file():
            _read(path, 0)
    db = open_database(settings)
    detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
    candidates = CandidateIndex(settings.index_dir / "candidates")
    indexer = SearchIndexer(settings, db)
    normalize = NormalizePipeline(settings)
    fingerprint = FingerprintPipeline()
    for path in paths:
        draft = PostingDraft(
            source=LOCAL_SOURCE, url=path, raw=_read(path, settings.max_posting_bytes), title=Path(path).name
        )
        normalize.apply(draft)
        fingerprint.apply(draft)
        detect_draft(detector, draft)
        if draft.partial:
            sys.stderr.write(
                f"leaksentinel: warning: {path}: detection hit its time limit; the end of the file was not read\n"
            )
        if store:
            result = store_posting(db, settings, draft)
            if result.new:
                candidates.add(result.posting_id, draft.candidate_hashes)
                candidates.flush()
                indexer.add(result.posting_id, draft)
        for finding in draft.findings:
            yield finding.as_json(path)
    indexer.flush()
