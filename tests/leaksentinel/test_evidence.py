"""Evidence packages end to end: ``alerts evidence`` and ``GET /api/v1/alerts/{id}/evidence`` make a signed zip
of stored postings; ``evidence verify`` accepts it as made and names every kind of tampering."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from warcio.archiveiterator import ArchiveIterator

import leaksentinel.evidence as evidence_mod
from core.db import open_database
from core.evidence_key import public_key_hex
from core.hashing import load_or_create_key
from core.models import Alert, Posting
from core.settings import load_settings
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.api.app import create_app
from leaksentinel.company_hash import hash_csv
from leaksentinel.evidence import MANIFEST, SIGNATURE, build_evidence, warc_record
from leaksentinel.scanning import scan_paths

ACME_LEAK = b"combo list\njane@acme.example:hunter2\n\xff\xfe raw bytes kept as fetched\n"


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """Two tenants, each with one stored leak and its alert (SQLite and, when configured, PostgreSQL)."""
    settings = load_settings(api_rate_per_s=1000.0, api_burst=1000)
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    other = add_tenant(db, "other", ["other.example"], [])
    key = load_or_create_key(settings.key_path)
    for tenant, email in (("acme", "jane@acme.example"), ("other", "bob@other.example")):
        csv_path = tmp_path / f"{tenant}.csv"
        csv_path.write_text(f"id,email\n{tenant}-1,{email}\n")
        jsonl = tmp_path / f"{tenant}.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id")))
        add_records(db, tenant, jsonl, settings=settings)
    acme_leak = tmp_path / "acme-leak.txt"
    acme_leak.write_bytes(ACME_LEAK)
    other_leak = tmp_path / "other-leak.txt"
    other_leak.write_text("dump\nbob@other.example:letmein\n")
    list(scan_paths(settings, [str(acme_leak), str(other_leak)], store=True))
    alerts = {a["tenant"]: a for a in list_alerts(db)}
    with db.session() as sess:
        alert = sess.get(Alert, alerts["acme"]["id"])
        assert alert is not None
        posting = sess.get(Posting, alert.posting_id)
        assert posting is not None
        posting_id, fetched = posting.id, posting.fetched
    return {
        "settings": settings,
        "db": db,
        "acme": acme["api_key"],
        "other": other["api_key"],
        "acme_alert": alerts["acme"]["id"],
        "other_alert": alerts["other"]["id"],
        "posting": posting_id,
        "fetched": fetched,
        "leak_path": str(acme_leak),
        "tmp": tmp_path,
    }


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _rezip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in entries.items():
            zf.writestr(name, body)
    return out.getvalue()


def _package(world: dict[str, Any]) -> bytes:
    return build_evidence(world["db"], world["settings"], world["acme_alert"])


def _verify(cli: Callable[..., Any], tmp: Path, data: bytes, *extra: str) -> Any:
    path = tmp / f"check-{hashlib.sha256(data).hexdigest()[:12]}.zip"
    path.write_bytes(data)
    return cli("evidence", "verify", str(path), *extra)


def test_cli_round_trip_writes_a_private_zip_that_verifies(world: dict[str, Any], cli: Any) -> None:
    target = world["tmp"] / "out" / "acme.zip"
    target.parent.mkdir()
    made = cli("alerts", "evidence", str(world["acme_alert"]), "-o", str(target), "--json")
    assert made.code == 0, made.err
    data = target.read_bytes()
    assert made.json() == {
        "alert": world["acme_alert"],
        "file": str(target),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # The key is created on first use beside hash.key, owner-only.
    key_file = world["settings"].key_path.parent / "evidence.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    entries = _entries(data)
    folder = f"posting-{world['posting']}"
    assert entries[f"{folder}/raw.bin"] == ACME_LEAK  # the bytes as read, not the decoded text
    manifest = json.loads(entries[MANIFEST])
    assert set(manifest["files"]) == {f"{folder}/raw.bin", f"{folder}/fetch.json", "evidence.warc"}
    for name, meta in manifest["files"].items():
        assert meta == {"sha256": hashlib.sha256(entries[name]).hexdigest(), "size": len(entries[name])}
    assert manifest["alert"]["id"] == world["acme_alert"] and manifest["alert"]["tenant"] == "acme"
    assert "jane@acme.example" not in entries[MANIFEST].decode()  # masked values only
    fetch = json.loads(entries[f"{folder}/fetch.json"])
    assert fetch["raw_sha256"] == hashlib.sha256(ACME_LEAK).hexdigest()
    assert fetch["fetched"] == world["fetched"].replace(tzinfo=UTC).isoformat()
    assert fetch["screenshot"] is None and fetch["screenshot_note"] == "not a rendered source"
    assert fetch["response_headers"] is None and "not kept" in fetch["headers_note"]
    assert manifest["signature"]["public_key"] == cli("evidence", "key").out.strip()

    ok = cli("evidence", "verify", str(target))
    assert ok.code == 0, ok.err
    assert "OK: 3 files" in ok.out and "integrity only" in ok.out
    as_json = cli("evidence", "verify", str(target), "--json").json()
    assert as_json["ok"] is True and as_json["problems"] == [] and as_json["alert"] == world["acme_alert"]


def test_warc_record_holds_the_raw_bytes_dated_at_the_fetch(world: dict[str, Any]) -> None:
    entries = _entries(_package(world))
    records = [(r, r.content_stream().read()) for r in ArchiveIterator(io.BytesIO(entries["evidence.warc"]))]
    assert len(records) == 1
    record, content = records[0]
    assert record.rec_type == "resource"
    assert record.rec_headers.get_header("WARC-Target-URI") == Path(world["leak_path"]).as_uri()
    assert record.rec_headers.get_header("WARC-Record-ID").startswith("<urn:uuid:")
    assert record.rec_headers.get_header("WARC-Date").startswith(
        world["fetched"].strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert record.rec_headers.get_header("WARC-Payload-Digest").startswith("sha256:")
    assert int(record.rec_headers.get_header("Content-Length")) == len(ACME_LEAK)
    assert content == ACME_LEAK


def test_warc_response_record_when_the_http_head_is_known() -> None:
    raw = b"<html>leak</html>"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: x\r\n"
    data = warc_record(
        raw, "http://paste.example/1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), http_head=head
    )
    ((record, content),) = [(r, r.content_stream().read()) for r in ArchiveIterator(io.BytesIO(data))]
    assert record.rec_type == "response"
    assert record.http_headers.get_header("Content-Type") == "text/html"
    assert record.rec_headers.get_header("WARC-Date") == "2026-01-02T03:04:05.000000Z"
    assert content == raw


def test_one_changed_byte_in_raw_fails_naming_the_file(world: dict[str, Any], cli: Any) -> None:
    entries = _entries(_package(world))
    name = f"posting-{world['posting']}/raw.bin"
    body = bytearray(entries[name])
    body[5] ^= 0x01
    entries[name] = bytes(body)
    r = _verify(cli, world["tmp"], _rezip(entries))
    assert r.code == 1
    assert f"FAILED: {name}: SHA-256 differs" in r.err
    assert "signature" not in r.err  # the manifest itself is intact


def test_tampered_signature_or_manifest_fails(world: dict[str, Any], cli: Any) -> None:
    entries = _entries(_package(world))
    sig = bytearray(entries[SIGNATURE])
    sig[0] = ord("0") if sig[0] != ord("0") else ord("1")
    r = _verify(cli, world["tmp"], _rezip({**entries, SIGNATURE: bytes(sig)}))
    assert r.code == 1 and "bad signature" in r.err
    # Editing the manifest (here the severity) without the deployment's key breaks the signature.
    edited = entries[MANIFEST].replace(b'"severity": "', b'"severity": "x', 1)
    assert edited != entries[MANIFEST]
    r = _verify(cli, world["tmp"], _rezip({**entries, MANIFEST: edited}))
    assert r.code == 1 and "bad signature" in r.err
    without = {k: v for k, v in entries.items() if k != SIGNATURE}
    r = _verify(cli, world["tmp"], _rezip(without))
    assert r.code == 1 and f"{SIGNATURE} missing" in r.err


def test_removed_or_added_files_fail(world: dict[str, Any], cli: Any) -> None:
    entries = _entries(_package(world))
    fetch = f"posting-{world['posting']}/fetch.json"
    r = _verify(cli, world["tmp"], _rezip({k: v for k, v in entries.items() if k != fetch}))
    assert r.code == 1 and f"{fetch}: listed in the manifest but missing from the zip" in r.err
    r = _verify(cli, world["tmp"], _rezip({**entries, "extra/note.txt": b"planted"}))
    assert r.code == 1 and "extra/note.txt: in the zip but not in the manifest (added)" in r.err
    # Dropping the entry from the manifest too: the signature no longer holds, and the file is unlisted.
    manifest = json.loads(entries[MANIFEST])
    del manifest["files"][fetch]
    r = _verify(cli, world["tmp"], _rezip({**entries, MANIFEST: json.dumps(manifest).encode()}))
    assert (
        r.code == 1 and "bad signature" in r.err and f"{fetch}: in the zip but not in the manifest" in r.err
    )


def test_pinned_key_proves_origin(world: dict[str, Any], cli: Any) -> None:
    """Re-signed with a forger's key, the zip is internally consistent; only ``--key`` tells it apart."""
    pub = world["tmp"] / "deployment.pub"
    assert cli("evidence", "key", "-o", str(pub)).code == 0
    genuine = _package(world)
    assert _verify(cli, world["tmp"], genuine, "--key", str(pub)).code == 0

    entries = _entries(genuine)
    manifest = json.loads(entries[MANIFEST])
    manifest["alert"]["severity"] = "low"
    forger = Ed25519PrivateKey.generate()
    manifest["signature"]["public_key"] = public_key_hex(forger)
    body = json.dumps(manifest).encode()
    forged = _rezip({**entries, MANIFEST: body, SIGNATURE: forger.sign(body).hex().encode()})
    assert _verify(cli, world["tmp"], forged).code == 0  # integrity only
    r = _verify(cli, world["tmp"], forged, "--key", str(pub))
    assert r.code == 1 and "another key than the pinned one" in r.err
    bad_key = world["tmp"] / "bad.pub"
    bad_key.write_text("not a key\n")
    r = _verify(cli, world["tmp"], genuine, "--key", str(bad_key))
    assert r.code == 2 and "not an Ed25519 public key" in r.err and "Traceback" not in r.err


def test_not_a_zip_and_hostile_zips(world: dict[str, Any], cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _verify(cli, world["tmp"], b"PK\x03\x04 this is not really a zip" * 10)
    assert r.code == 2 and "not a zip file" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("evidence", "verify", str(world["tmp"] / "missing.zip"))
    assert r.code == 2 and "no such package" in r.err
    entries = _entries(_package(world))
    # Names that would escape a directory if extracted: reported, never written anywhere.
    r = _verify(cli, world["tmp"], _rezip({**entries, "../../evil.sh": b"x", "/etc/x": b"y"}))
    assert r.code == 1 and "unsafe file name in zip: ../../evil.sh" in r.err and "/etc/x" in r.err
    assert not (world["tmp"].parent / "evil.sh").exists()
    # Sizes are read, never trusted: an entry beyond the bound is refused without reading it whole.
    monkeypatch.setattr(evidence_mod, "MAX_ENTRY_BYTES", 1024)
    r = _verify(cli, world["tmp"], _rezip({**entries, "big.bin": b"\0" * 5000}))
    assert r.code == 1 and "big.bin: larger than 1024 bytes" in r.err
    r = _verify(cli, world["tmp"], _rezip({**entries, MANIFEST: b"{not json"}))
    assert r.code == 1 and "manifest.json: not valid JSON" in r.err


def test_cli_unknown_alert_and_bad_output(world: dict[str, Any], cli: Any) -> None:
    r = cli("alerts", "evidence", "999999", "-o", str(world["tmp"] / "x.zip"))
    assert r.code == 2 and "unknown alert" in r.err
    r = cli("alerts", "evidence", str(world["acme_alert"]), "-o", str(world["tmp"] / "no-dir" / "x.zip"))
    assert r.code == 2 and "does not exist" in r.err


def test_api_gives_the_owner_the_zip_and_others_404(world: dict[str, Any], cli: Any) -> None:
    client = TestClient(create_app(world["settings"]))
    url = f"/api/v1/alerts/{world['acme_alert']}/evidence"
    r = client.get(url, headers={"Authorization": f"Bearer {world['acme']}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f"alert-{world['acme_alert']}-evidence.zip" in r.headers["content-disposition"]
    manifest = json.loads(_entries(r.content)[MANIFEST])
    assert manifest["created_by"].startswith("key:") and manifest["alert"]["tenant"] == "acme"
    assert _verify(cli, world["tmp"], r.content).code == 0
    denied = client.get(url, headers={"Authorization": f"Bearer {world['other']}"})
    assert denied.status_code == 404 and b"PK" not in denied.content[:2]
    assert client.get(url).status_code == 401
    own = client.get(
        f"/api/v1/alerts/{world['other_alert']}/evidence",
        headers={"Authorization": f"Bearer {world['other']}"},
    )
    assert (
        own.status_code == 200 and json.loads(_entries(own.content)[MANIFEST])["alert"]["tenant"] == "other"
    )


def test_pipe_from_export_to_verify(world: dict[str, Any]) -> None:
    """``alerts evidence ID -o -`` writes the zip to stdout and ``evidence verify -`` reads it from stdin."""
    run = [sys.executable, "-m", "leaksentinel"]
    made = subprocess.run(
        [*run, "alerts", "evidence", str(world["acme_alert"]), "-o", "-"], capture_output=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout[:2] == b"PK"
    checked = subprocess.run(
        [*run, "evidence", "verify", "-", "--json"], input=made.stdout, capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout.splitlines()[-1])["ok"] is True
    broken = subprocess.run(
        [*run, "evidence", "verify", "-"], input=made.stdout[:-30], capture_output=True, timeout=60
    )
    assert broken.returncode == 2 and b"not a zip file" in broken.stderr


def test_evidence_outlives_posting_retention(world: dict[str, Any], cli: Any) -> None:
    """A purge long after the fetch leaves the alert's raw bytes: its evidence is still complete and verifies."""
    from datetime import timedelta

    from leaksentinel.actions.retention import purge

    purge(world["db"], world["settings"], now=datetime.now(UTC) + timedelta(days=10_000))
    data = _package(world)
    assert _entries(data)[f"posting-{world['posting']}/raw.bin"] == ACME_LEAK
    assert _verify(cli, world["tmp"], data).code == 0


def test_missing_raw_bytes_are_said_not_hidden(world: dict[str, Any], cli: Any) -> None:
    digest = hashlib.sha256(ACME_LEAK).hexdigest()
    (world["settings"].evidence_dir / digest[:2] / digest).unlink()
    entries = _entries(_package(world))
    folder = f"posting-{world['posting']}"
    assert f"{folder}/raw.bin" not in entries and "evidence.warc" not in entries
    assert (
        json.loads(entries[f"{folder}/fetch.json"])["raw_note"] == "the raw bytes are no longer in the store"
    )
    assert _verify(cli, world["tmp"], _rezip(entries)).code == 0
