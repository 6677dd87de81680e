"""The match index: no false negatives, 8 bytes per registered value, kept level with the database."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np

from core.db import open_database
from core.hashing import load_or_create_key
from core.settings import load_settings
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records, remove_watch
from leaksentinel.company_hash import hash_csv
from pipelines.detection.index import MatchIndex, prefixes_of


def test_contains_has_no_false_negatives_and_few_false_positives(tmp_path: Path) -> None:
    registered = [secrets.token_hex(16) for _ in range(20_000)]
    index = MatchIndex(tmp_path / "idx")
    index.merge(prefixes_of(registered))
    assert index.path.stat().st_size == 8 * len(registered)
    assert index.contains(prefixes_of(registered)).all()
    others = [secrets.token_hex(16) for _ in range(20_000)]
    assert not index.contains(prefixes_of(others)).any()
    assert index.filter(others[:3] + registered[:2]) == registered[:2]
    assert index.contains(np.zeros(0, dtype="<u8")).shape == (0,)


def test_a_reader_sees_a_newer_generation_published_by_another_writer(tmp_path: Path) -> None:
    reader = MatchIndex(tmp_path / "idx")
    writer = MatchIndex(tmp_path / "idx")
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    writer.merge(prefixes_of([first]))
    assert reader.filter([first, second]) == [first]
    writer.merge(prefixes_of([second]))
    assert reader.filter([first, second]) == [first, second]


def _register(tmp_path: Path, name: str, emails: list[str], header: str = "email") -> dict:  # type: ignore[type-arg]
    settings = load_settings()
    csv_path = tmp_path / f"{name}.csv"
    csv_path.write_text(header + "\n" + "".join(e + "\n" for e in emails))
    rows = hash_csv(csv_path, load_or_create_key(settings.key_path))
    (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return add_records(open_database(settings), "acme", tmp_path / f"{name}.jsonl")


def test_sync_merges_new_registrations_and_rebuilds_after_removal(tmp_path: Path, database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", [], [])
    watch = _register(tmp_path, "a", ["a@x.example", "b@x.example"])
    index = MatchIndex(settings.index_dir)
    assert index.sync(db) == 2
    generation = json.loads((settings.index_dir / "records.json").read_text())["generation"]
    assert index.sync(db) == 2  # nothing changed: no new generation
    assert json.loads((settings.index_dir / "records.json").read_text())["generation"] == generation
    # Same watch item (records), more rows: merged incrementally.
    _register(tmp_path, "b", ["c@x.example"])
    assert index.sync(db) == 3
    remove_watch(db, "acme", str(watch["id"]))
    assert index.sync(db) == 0


def test_sync_keeps_the_registered_field_types(tmp_path: Path, database_url: str) -> None:
    """`scan` without `--store` hashes only these types: a type missing here is a leak not found."""
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", [], [])
    index = MatchIndex(settings.index_dir)
    assert index.field_types() is None  # no index yet: any type
    watch = _register(tmp_path, "a", ["a@x.example"])
    index.sync(db)
    assert index.field_types() == {"email"}
    # a reader in another process sees the types of the generation it maps
    assert MatchIndex(settings.index_dir).field_types() == {"email"}
    _register(tmp_path, "b", ["+86 138 0013 8000"], header="phone")
    index.sync(db)  # merged incrementally: the new rows' types join the old
    assert index.field_types() == {"email", "phone"}
    remove_watch(db, "acme", str(watch["id"]))  # the tenant's one records watch: every record goes
    index.sync(db)  # rebuilt: the removed records' types are gone
    assert index.field_types() == frozenset()
    _register(tmp_path, "c", ["+86 138 0013 8001"], header="phone")
    index.sync(db)
    assert index.field_types() == {"phone"}


def test_an_index_written_before_the_types_were_kept_is_read_whole_once(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", [], [])
    _register(tmp_path, "a", ["a@x.example"])
    index = MatchIndex(settings.index_dir)
    index.sync(db)
    meta_path = settings.index_dir / "records.json"
    meta = json.loads(meta_path.read_text())
    del meta["types"]  # as the previous release wrote it
    meta_path.write_text(json.dumps(meta))
    assert MatchIndex(settings.index_dir).field_types() is None  # unknown: every type is hashed
    index = MatchIndex(settings.index_dir)
    assert index.sync(db) == 1
    assert index.field_types() == {"email"}
    assert json.loads(meta_path.read_text())["generation"] == meta["generation"] + 1
    meta_path.write_text("{not json")
    assert MatchIndex(settings.index_dir).field_types() is None


def test_merge_knows_no_types(tmp_path: Path) -> None:
    index = MatchIndex(tmp_path / "idx")
    index.merge(prefixes_of([secrets.token_hex(16)]))
    assert index.field_types() is None
