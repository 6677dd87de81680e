"""Detection reports when it could not read a whole posting within its time limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.db import open_database
from core.hashing import load_or_create_key
from core.settings import load_settings
from pipelines.detection import engine
from pipelines.detection.engine import Detector


def test_a_posting_read_to_the_end_is_not_partial() -> None:
    settings = load_settings()
    detector = Detector.from_database(open_database(settings), load_or_create_key(settings.key_path))
    assert detector.detect("a@b.example:pw\n" * 1000).partial is False


def test_hitting_the_time_limit_is_reported(monkeypatch: pytest.MonkeyPatch, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(engine, "DEADLINE_BASE_S", 0.0)
    monkeypatch.setattr(engine, "DEADLINE_PER_MB_S", 0.0)
    settings = load_settings()
    detector = Detector.from_database(open_database(settings), load_or_create_key(settings.key_path))
    assert detector.detect("a@b.example:pw\n" * 1000).partial is True
    big = tmp_path / "big.txt"
    big.write_text("x@y.example:pw\n" * 1000)
    result = cli("scan", str(big))
    assert result.code == 0 and "time limit" in result.err


def _register(db, key: bytes, tmp_path: Path, name: str, email: str) -> int:  # type: ignore[no-untyped-def]
    import json

    from core.hashing import keyed_hash
    from leaksentinel.actions.watches import add_records

    path = tmp_path / f"{name}.jsonl"
    path.write_text(
        json.dumps({"record_key": name, "fields": {"email": keyed_hash(key, "email", email)}, "v": 1})
    )
    return int(add_records(db, "acme", path)["id"])


def test_remembered_hits_follow_registrations_and_removals(tmp_path: Path) -> None:
    """A long-lived detector sees records registered and removed after it started (index generations)."""
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import remove_watch
    from pipelines.detection.engine import DbHashLookup, WatchSnapshot
    from pipelines.detection.index import MatchIndex

    settings = load_settings()
    db = open_database(settings)
    key = load_or_create_key(settings.key_path)
    add_tenant(db, "acme", [], ["CN"])
    first = _register(db, key, tmp_path, "r1", "one@example.com")
    index = MatchIndex(settings.index_dir)
    index.sync(db)
    detector = Detector(key, DbHashLookup(db, index), WatchSnapshot.load(db))
    text = "one@example.com:pw1\ntwo@example.com:pw2\n"
    assert [f.record_key for f in detector.detect(text).findings] == ["r1"]
    _register(db, key, tmp_path, "r2", "two@example.com")
    index.sync(db)
    assert sorted(f.record_key for f in detector.detect(text).findings) == ["r1", "r2"]
    remove_watch(db, "acme", str(first))  # the tenant's records watch: both records go
    index.sync(db)
    assert detector.detect(text).findings == []


@pytest.mark.parametrize("fast", [True, False])
def test_record_lookup_reads_what_the_expanding_statement_reads(tmp_path: Path, fast: bool) -> None:
    """The look-up binds the hashes as one value (JSON array on SQLite, array on PostgreSQL) on the DBAPI
    cursor: the same rows as the expanding IN it replaced, over two chunks, with absent and repeated
    hashes, and through SQLAlchemy when the fast path is off."""
    import random

    from sqlalchemy import insert

    from core.models import RecordHash, Tenant, WatchItem
    from pipelines import fastsql
    from pipelines.detection.engine import _RECORD_HITS, _RECORD_HITS_ONE_VALUE, DbHashLookup

    settings = load_settings()
    db = open_database(settings)
    rng = random.Random(7)
    with db.session() as sess:
        tenants = [Tenant(name="acme"), Tenant(name="globex")]
        sess.add_all(tenants)
        sess.flush()
        watches = [WatchItem(tenant_id=t.id, kind="records", value=f"{t.name}.jsonl") for t in tenants]
        sess.add_all(watches)
        sess.flush()
        registered = [f"{rng.getrandbits(256):064x}" for _ in range(700)]
        rows = [
            {
                "tenant_id": w.tenant_id,
                "watch_id": w.id,
                "record_key": f"r{i}",
                "field_type": rng.choice(["email", "phone", "name"]),
                "hash": h,
            }
            for i, h in enumerate(registered)
            for w in watches[: 1 + i % 2]  # some hashes registered by both tenants
        ]
        sess.execute(insert(RecordHash), rows)
    absent = [f"{rng.getrandbits(256):064x}" for _ in range(200)]
    wanted = sorted(set(rng.sample(registered, 450) + absent))
    assert len(wanted) > DbHashLookup.CHUNK
    previous = fastsql.set_enabled(fast)
    try:
        got = DbHashLookup(db)._rows(wanted)
        with db.engine.connect() as conn:  # the statement ran on the cursor, or through SQLAlchemy
            assert (_RECORD_HITS_ONE_VALUE[conn.dialect.name][0]._plan(conn) is not None) == fast
    finally:
        fastsql.set_enabled(previous)
    with db.read_session() as sess:
        reference = [tuple(r) for r in sess.execute(_RECORD_HITS, {"hashes": wanted})]
    assert sorted(got) == sorted(reference) and len(reference) > 450


def test_a_crawl_process_reads_look_alikes_that_an_earlier_one_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detector.from_database (what every crawl and scan process builds) keeps the watched domains'
    look-alikes under the index directory; the next process reads them instead of running dnstwist."""
    from leaksentinel.actions.tenants import add_tenant
    from pipelines.detection import lookalikes

    settings = load_settings()
    db = open_database(settings)
    key = load_or_create_key(settings.key_path)
    add_tenant(db, "acme", ["acme-bank.com"], [])
    text = "creds for acme-bannk.com users\n"
    first = Detector.from_database(db, key, settings.index_dir)
    assert list((settings.index_dir / "lookalikes").rglob("*.json"))
    lookalikes.variants.cache_clear()  # a new process: nothing remembered in memory

    def refused(*args: object, **kwargs: object) -> object:
        raise AssertionError("look-alikes computed again")

    monkeypatch.setattr(lookalikes, "variants", refused)
    second = Detector.from_database(db, key, settings.index_dir)
    found = [(f.kind, f.watch) for f in second.detect(text).findings]
    assert (
        found == [(f.kind, f.watch) for f in first.detect(text).findings]
        and ("lookalike", "acme-bannk.com") in found
    )


def test_an_ascii_posting_in_capitals_finds_its_document_and_keyword(tmp_path: Path) -> None:
    """With watched domains the engine lowers the posting once; the document and keyword watches then
    read that lowered text as the posting's fold (an ASCII text's fold is its lower case)."""
    import json

    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import add_document_watch, add_keyword_watch
    from pipelines.detection.documents import document_fingerprint

    settings = load_settings()
    db = open_database(settings)
    key = load_or_create_key(settings.key_path)
    add_tenant(db, "acme", ["acme.example"], ["CN"])
    plan = " ".join(f"clause{i} of the northern network acquisition plan" for i in range(40))
    document = tmp_path / "plan.json"
    document.write_text(json.dumps(document_fingerprint(plan, name="plan", key=key)))
    add_document_watch(db, "acme", document, "plan")
    add_keyword_watch(db, "acme", "Project Falcon")
    detector = Detector.from_database(db, key, settings.index_dir)
    posting = f"ops@acme.example\nPROJECT FALCON STATUS\n{plan.upper()}\n"
    assert posting.isascii()
    kinds = sorted(f.kind for f in detector.detect(posting).findings)
    assert "document" in kinds and "keyword" in kinds, kinds
