"""Evidence in a fleet (issue 14, point 4): machines pointed at one evidence directory (and one key file)
export the evidence of an alert raised on another machine, signed with the deployment's evidence key."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from core.db import open_database
from core.evidence_key import load_or_create_signing_key, public_key_hex
from core.settings import Settings, load_settings
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.evidence import build_evidence, verify_evidence
from leaksentinel.scanning import scan_paths

LEAK = b"dump\nbob@acme.example:letmein\n\xff raw bytes as fetched\n"


def _machine(tmp_path: Path, name: str, database_url: str) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKSENTINEL_")}
    env.update(
        LEAKSENTINEL_HOME=str(tmp_path / name),
        LEAKSENTINEL_DATABASE_URL=database_url,
        LEAKSENTINEL_HASH_KEY_FILE=str(tmp_path / "shared" / "keys" / "hash.key"),
        LEAKSENTINEL_EVIDENCE_PATH=str(tmp_path / "shared" / "evidence"),
    )
    return load_settings(environ=env)


def test_any_machine_exports_evidence_an_other_machine_fetched(tmp_path: Path, database_url: str) -> None:
    database_url = database_url or f"sqlite:///{tmp_path / 'fleet.db'}"
    a, b = _machine(tmp_path, "a", database_url), _machine(tmp_path, "b", database_url)
    assert a.evidence_dir == b.evidence_dir == tmp_path / "shared" / "evidence"
    db = open_database(a)
    add_tenant(db, "acme", ["acme.example"], [])
    leak = tmp_path / "leak.txt"
    leak.write_bytes(LEAK)
    list(scan_paths(a, [str(leak)], store=True))  # machine a fetched and stored it
    assert not (tmp_path / "a" / "evidence").exists()
    [alert] = list_alerts(db)
    data = build_evidence(open_database(b), b, alert["id"])  # machine b exports it
    files = zipfile.ZipFile(io.BytesIO(data)).namelist()
    raw = [name for name in files if name.endswith("/raw.bin")]
    assert raw and zipfile.ZipFile(io.BytesIO(data)).read(raw[0]) == LEAK
    # one evidence key, beside the shared hashing key: the zip verifies pinned to either machine's key
    pinned = public_key_hex(load_or_create_signing_key(a))
    assert pinned == public_key_hex(load_or_create_signing_key(b))
    assert verify_evidence(data, pinned.encode()).ok
