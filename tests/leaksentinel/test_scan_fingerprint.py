"""`scan` fingerprints a file (content hash, SimHash) only when it stores it.

Why: the findings `scan` reports never read the fingerprint, which was about a tenth of a scan's CPU;
`scan --store` keeps a posting as a crawl would, and the near-duplicate search needs its fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import pipelines.fingerprint as fingerprint
from core.db import open_database
from core.models import Posting
from core.settings import load_settings
from leaksentinel.scanning import scan_paths

TEXT = "dump of the week\n" + "".join(
    f"user{i}@example.com:hunter{i} row {i} of the table\n" for i in range(40)
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    for name in ("content_hash", "simhash"):
        real = getattr(fingerprint, name)

        def counted(text: str, _real: Any = real, _name: str = name) -> Any:
            seen.append(_name)
            return _real(text)

        monkeypatch.setattr(fingerprint, name, counted)
    return seen


@pytest.fixture
def posting(tmp_path: Path) -> Path:
    path = tmp_path / "paste.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_scan_reports_findings_without_fingerprinting(
    posting: Path, calls: list[str], database_url: str
) -> None:
    settings = load_settings()
    found = list(scan_paths(settings, [str(posting)]))
    assert calls == []
    stored = list(scan_paths(settings, [str(posting)], store=True))
    assert found == stored  # the same findings either way
    assert sorted(calls) == ["content_hash", "simhash"]


def test_scan_store_keeps_the_fingerprint_a_crawl_keeps(
    posting: Path, calls: list[str], database_url: str
) -> None:
    settings = load_settings()
    list(scan_paths(settings, [str(posting)], store=True))
    with open_database(settings).session() as sess:
        row = sess.scalars(select(Posting).where(Posting.url == str(posting))).one()
        text = row.text_row.text
        assert row.content_hash == fingerprint.content_hash(text)
        assert row.simhash == fingerprint.simhash(text) and row.simhash is not None


def test_a_draft_detected_without_its_fingerprint_is_fingerprinted_when_stored(database_url: str) -> None:
    from core.posting import PostingDraft
    from pipelines.ingest import Ingest
    from pipelines.store import LOCAL_SOURCE

    settings = load_settings()
    db = open_database(settings)
    draft = PostingDraft(source=LOCAL_SOURCE, url="file:///dump.txt", raw=TEXT.encode("utf-8"))
    with Ingest(settings, db) as ingest:
        ingest.detect(draft, fingerprint=False)
        assert draft.content_hash == "" and draft.simhash is None
        result = ingest.store(draft)
    with db.session() as sess:
        row = sess.get(Posting, result.posting_id)
        assert row is not None and row.content_hash == fingerprint.content_hash(draft.text)
        assert row.simhash == fingerprint.simhash(draft.text) and row.simhash is not None
