"""``leaksentinel purge``: old posting text, search entries and evidence go unless an alert holds them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db import open_database
from core.models import Alert, Posting, Sighting, Source, Tenant
from core.search import SearchQuery, open_backend, reindex
from core.settings import Settings, load_settings
from pipelines.store import write_evidence

WORDS = {"first": "zebrafirst", "sighted": "zebrasighted", "unheld": "zebraunheld", "new": "zebranew"}


def _world() -> tuple[Settings, dict[str, int]]:
    """Four postings: an alert's first posting and a sighting of it (old, held), an old one no alert
    holds, and a new one; each with its own evidence file and search entry."""
    settings = load_settings()
    db = open_database(settings)
    old = datetime.now(UTC) - timedelta(days=settings.retention_days + 5)
    new = datetime.now(UTC) - timedelta(days=1)
    ids: dict[str, int] = {}
    with db.session() as sess:
        tenant = Tenant(name="acme")
        source = Source(name="paste", kind="pastebin", url="http://127.0.0.1:1/")
        sess.add_all([tenant, source])
        sess.flush()
        for name, fetched in (("first", old), ("sighted", old), ("unheld", old), ("new", new)):
            text = f"leaked row {WORDS[name]} alice@example.com"
            p = Posting(
                source_id=source.id,
                url=f"http://127.0.0.1:1/{name}",
                fetched=fetched,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                evidence_sha256=write_evidence(settings.evidence_dir, text.encode()),
                text=text,
            )
            sess.add(p)
            sess.flush()
            ids[name] = p.id
        alert = Alert(tenant_id=tenant.id, posting_id=ids["first"], severity="high")
        sess.add(alert)
        sess.flush()
        sess.add(Sighting(alert_id=alert.id, posting_id=ids["sighted"], url="http://127.0.0.1:1/sighted"))
    backend = open_backend(settings)
    assert reindex(db, backend) == 4
    return settings, ids


def _state(settings: Settings) -> dict[str, tuple[str, bool, int]]:
    """Per posting: its text, whether its evidence file exists, and how many search hits its word has."""
    db = open_database(settings)
    backend = open_backend(settings)
    out = {}
    with db.session() as sess:
        for name in WORDS:
            p = sess.query(Posting).filter(Posting.url == f"http://127.0.0.1:1/{name}").one()
            assert p.evidence_sha256  # the hash stays as the record of what was fetched
            evidence = (settings.evidence_dir / p.evidence_sha256[:2] / p.evidence_sha256).exists()
            hits = len(backend.search(SearchQuery(WORDS[name])).hits)
            out[name] = (p.text, evidence, hits)
    return out


def test_purge_deletes_only_the_old_posting_no_alert_holds(cli: Any, database_url: str) -> None:
    settings, ids = _world()
    before = _state(settings)
    assert all(text and evidence and hits == 1 for text, evidence, hits in before.values())

    dry = cli("purge", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert {k: v for k, v in dry.json().items() if k != "partitions_dropped"} == {
        "postings": 1,
        "search_entries": 1,
        "evidence_files": 1,
        "held_by_alerts": 2,
        "dry_run": True,
    }
    assert _state(settings) == before  # --dry-run changes nothing

    done = cli("purge", "--json")
    assert done.code == 0, done.err
    assert {k: v for k, v in done.json().items() if k != "partitions_dropped"} == {
        "postings": 1,
        "search_entries": 1,
        "evidence_files": 1,
        "held_by_alerts": 2,
        "dry_run": False,
    }
    after = _state(settings)
    assert after["unheld"] == ("", False, 0)  # text, evidence and search entry gone
    for kept in ("first", "sighted", "new"):
        assert after[kept] == before[kept]

    db = open_database(settings)
    with db.session() as sess:  # the row stays: its id, URL and hashes still serve repost detection
        row = sess.get(Posting, ids["unheld"])
        assert row is not None and row.url.endswith("/unheld") and len(row.content_hash) == 64

    again = cli("purge", "--json")  # nothing left to do
    assert again.json()["postings"] == 0
    human = cli("purge")
    assert human.code == 0 and "deleted the text of 0 posting(s)" in human.out


def test_evidence_shared_with_a_kept_posting_stays(cli: Any, database_url: str) -> None:
    settings, ids = _world()
    db = open_database(settings)
    with db.session() as sess:  # the same bytes fetched again recently: the file backs both
        new, unheld = sess.get(Posting, ids["new"]), sess.get(Posting, ids["unheld"])
        assert new is not None and unheld is not None
        new.evidence_sha256 = unheld.evidence_sha256
    result = cli("purge", "--json")
    assert result.json()["postings"] == 1 and result.json()["evidence_files"] == 0
    state = _state(settings)
    assert state["unheld"] == ("", True, 0)
    assert state["new"][1] is True
