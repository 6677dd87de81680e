"""`scan` without `--store` hashes only the field types some tenant registered; `--store` hashes all.

Why: a scan that stores nothing never reads the hashes of a type no tenant registered (about two thirds
of a dump's candidates: texts, usernames, passport-like words), while a stored posting keeps every
candidate hash, so that records of any type registered later are matched against it (retro-matching).
The findings must be the same either way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import core.settings
from core.db import open_database
from core.hashing import keyed_digest, load_or_create_key
from core.models import Posting
from core.posting import PostingDraft
from core.settings import load_settings
from leaksentinel.scanning import scan_paths
from pipelines.detection.engine import Detector
from pipelines.detection.fastscan import HashedScanner
from pipelines.ingest import Ingest
from pipelines.store import LOCAL_SOURCE

ROOT = Path(__file__).resolve().parents[2]
BENCH_TYPES = {"email", "phone", "card", "cn_id", "name", "dob"}  # what bench/detect.py's tenants register


@pytest.fixture
def bench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> tuple[Any, list[Path]]:
    """The scan benchmark's home (three tenants, every watch kind) and its postings as files."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import detect as bench
    finally:
        sys.path.remove(str(ROOT / "bench"))
    postings, planted = bench.build_corpus(600_000, 60_000, 17, 4)
    postings = bench.plant_watched([*bench.format_texts(12), *postings], 3)
    settings = load_settings()
    with monkeypatch.context() as m:
        m.setattr(core.settings, "Settings", lambda home: settings)
        (tmp_path / "w").mkdir()
        bench.setup_scan_home(tmp_path / "w", planted)
    files = []
    for i, text in enumerate(postings):
        path = tmp_path / f"posting{i:03d}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return settings, files


@pytest.fixture
def hashed_types(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The `types` of every hashing scan (listings apart)."""
    seen: list[Any] = []
    real = HashedScanner.scan

    def spy(self: HashedScanner, text: str, **kwargs: Any) -> Any:
        seen.append(kwargs.get("types"))
        return real(self, text, **kwargs)

    monkeypatch.setattr(HashedScanner, "scan", spy)
    return seen


def test_scan_hashes_the_registered_types_and_finds_the_same(
    bench_home: tuple[Any, list[Path]], hashed_types: list[Any]
) -> None:
    settings, files = bench_home
    paths = [str(f) for f in files]
    found = list(scan_paths(settings, paths))
    assert hashed_types and set(hashed_types) == {frozenset(BENCH_TYPES)}
    kinds = {f["kind"] for f in found}
    assert {"record", "domain", "keyword", "regex", "document", "secret"} <= kinds
    hashed_types.clear()
    # every candidate hashed, as a crawl does: the same findings, file by file
    db = open_database(settings)
    detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
    with Ingest(settings, db) as ingest:
        for path in paths:
            full = ingest.detect(PostingDraft(source=LOCAL_SOURCE, url=path, raw=Path(path).read_bytes()))
            assert full.candidates_kept and len(full.candidate_hashes) > 0
            narrow = detector.detect(full.text, candidates=False)
            assert narrow.candidate_hashes == b""
            assert narrow.findings == full.findings, path
    assert set(hashed_types) == {None, frozenset(BENCH_TYPES)}


def test_scan_store_keeps_every_candidate_hash(
    bench_home: tuple[Any, list[Path]], hashed_types: list[Any]
) -> None:
    settings, _files = bench_home
    posting = Path(settings.home) / "leak.txt"
    posting.write_text("login,dragon_slayer99,hunter2,a@nowhere.example\n", encoding="utf-8")
    stored = list(scan_paths(settings, [str(posting)], store=True))
    assert set(hashed_types) == {None}
    key = load_or_create_key(settings.key_path)
    with open_database(settings).session() as sess:
        row = sess.scalars(select(Posting).where(Posting.url == str(posting))).one()
        hashes = row.candidate_hashes or b""
    chunks = {hashes[i : i + 16] for i in range(0, len(hashes), 16)}
    # a username no tenant registered: kept for a record of that type registered later
    assert keyed_digest(key, "username", "dragon_slayer99")[:16] in chunks
    assert stored == list(scan_paths(settings, [str(posting)]))


def test_a_draft_detected_without_its_candidates_is_not_stored(database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    draft = PostingDraft(source=LOCAL_SOURCE, url="file:///dump.txt", raw=b"a@b.example:hunter2\n")
    with Ingest(settings, db) as ingest:
        ingest.detect(draft, fingerprint=True, candidates=False)
        assert not draft.candidates_kept and draft.candidate_hashes == b""
        with pytest.raises(ValueError, match="candidate"):
            ingest.store(draft)
    with db.session() as sess:
        assert sess.scalars(select(Posting)).first() is None


def test_without_a_match_index_every_type_is_hashed(database_url: str, hashed_types: list[Any]) -> None:
    settings = load_settings()
    db = open_database(settings)
    detector = Detector.from_database(db, load_or_create_key(settings.key_path))  # no index directory
    assert detector.registered_types() is None
    detector.detect("a@b.example:hunter2", candidates=False)
    assert hashed_types == [None]
