"""A fleet shares one hashing key through a configured path (issue 14, point 4): every machine pointed at it
agrees with the database's recorded fingerprint and hashes alike; a machine with its own key is refused."""

from __future__ import annotations

import os
from pathlib import Path

from core.db import open_database
from core.hashing import hash_value, load_or_create_key
from core.settings import Settings, load_settings
from leaksentinel.actions.deployment import check_hash_key


def _machine(home: Path, database_url: str, key_file: Path | None) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKSENTINEL_")}
    env["LEAKSENTINEL_HOME"] = str(home)
    env["LEAKSENTINEL_DATABASE_URL"] = database_url
    if key_file is not None:
        env["LEAKSENTINEL_HASH_KEY_FILE"] = str(key_file)
    return load_settings(environ=env)


def test_machines_pointed_at_one_key_file_agree_and_one_with_its_own_key_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    shared = tmp_path / "shared" / "hash.key"
    database_url = database_url or f"sqlite:///{tmp_path / 'fleet.db'}"  # one database for the fleet
    a = _machine(tmp_path / "a", database_url, shared)
    b = _machine(tmp_path / "b", database_url, shared)
    c = _machine(tmp_path / "c", database_url, None)
    assert a.key_path == shared and b.key_path == shared
    db = open_database(a)
    first = check_hash_key(db, a)
    assert first.ok and shared.is_file()
    assert check_hash_key(db, b).ok
    assert not (tmp_path / "b" / "hash.key").exists()  # b made no key of its own
    key_a = load_or_create_key(a.key_path)
    key_b = load_or_create_key(b.key_path)
    assert hash_value(key_a, "email", "jane@acme.example") == hash_value(key_b, "email", "jane@acme.example")
    (tmp_path / "c").mkdir()
    load_or_create_key(c.key_path)  # a machine that made its own key
    refused = check_hash_key(db, c)
    assert not refused.ok and str(c.key_path) in refused.message
