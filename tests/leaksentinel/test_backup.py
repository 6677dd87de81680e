"""``backup`` / ``restore``: a restored home answers like the original; hostile archives write nothing."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_settings
from leaksentinel.scanning import scan_paths

#: The round trip restores a SQLite home; with a server database `backup` refuses (tested below).
pytestmark = pytest.mark.sqlite_only("backup/restore cover the embedded default; PostgreSQL uses pg_dump")

LEAK = "combo list zebrafish\njane@acme.example:hunter2\nbob@acme.example:qwerty\n"


def _records(tmp_path: Path, cli: Any, rows: list[tuple[str, str]]) -> None:
    csv_path = tmp_path / "records.csv"
    csv_path.write_text("id,email\n" + "".join(f"{k},{e}\n" for k, e in rows))
    hashed = cli("hash", "--csv", str(csv_path), "--key-column", "id")
    assert hashed.code == 0, hashed.err
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text(hashed.out)
    added = cli("watch", "add", "--tenant", "acme", "--records", str(jsonl), "--json")
    assert added.code == 0, added.err


@pytest.fixture
def world(tmp_path: Path, cli: Any) -> dict[str, Any]:
    """A home with a tenant, a registered record and a stored posting that raised an alert."""
    assert cli("tenant", "add", "acme", "--domain", "acme.example", "--json").code == 0
    _records(tmp_path, cli, [("r1", "jane@acme.example")])
    leak = tmp_path / "leak.txt"
    leak.write_text(LEAK)
    stored = cli("scan", "--store", str(leak), "--json")
    assert stored.code == 0, stored.err
    hook = ("--webhook", "http://127.0.0.1:9/hook", "--secret", "s3cret-value")
    assert cli("subscribe", "--tenant", "acme", *hook).code == 0  # sealed under secrets.key
    from core.evidence_key import load_or_create_signing_key
    from leaksentinel.console.session import load_or_create_secret

    settings = load_settings()
    load_or_create_signing_key(settings)  # the keys a running service would have made
    load_or_create_secret(settings.home)
    assert (settings.home / "secrets.key").is_file()
    return {"leak": leak}


def _answers(cli: Any, leak: Path) -> dict[str, Any]:
    alerts = cli("alerts", "list", "--json")
    search = cli("search", "zebrafish", "--json")
    scan = cli("scan", str(leak), "--json")
    assert alerts.code == search.code == scan.code == 0, (alerts.err, search.err, scan.err)
    return {"alerts": alerts.jsonl(), "search": search.jsonl(), "scan": scan.jsonl()}


def _switch_home(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    monkeypatch.setenv("LEAKSENTINEL_HOME", str(path))
    return path


def test_round_trip_gives_the_same_alerts_searches_and_matches(
    world: dict[str, Any], cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _answers(cli, world["leak"])
    assert before["alerts"] and before["search"] and before["scan"]
    archive = tmp_path / "home.tar.gz"
    made = cli("backup", str(archive), "--json")
    assert made.code == 0, made.err
    summary = made.json()
    assert summary["backup"] == str(archive) and summary["files"] >= 4 and summary["created_at"]
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        manifest = json.loads(tar.extractfile(members[0]).read())  # type: ignore[union-attr]
    assert members[0].name == "manifest.json" and manifest["version"] == 1 and manifest["created_at"]
    names = {f["path"] for f in manifest["files"]}
    assert {"leaksentinel.db", "hash.key"} <= names
    assert any(n.startswith("evidence/") for n in names) and any(n.startswith("search/") for n in names)
    assert not any(n.startswith("run/") for n in names)
    assert all(m.mode == 0o600 and m.isreg() for m in members)

    new_home = _switch_home(monkeypatch, tmp_path / "restored")
    restored = cli("restore", str(archive), "--json")
    assert restored.code == 0, restored.err
    assert restored.json()["restored"] == str(new_home) and restored.json()["files"] == len(names)
    for key in ("hash.key", "secrets.key", "evidence.key", "console.secret"):
        assert (new_home / key).read_bytes() == (home / key).read_bytes(), key
    for path in (new_home / "leaksentinel.db", new_home / "hash.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _answers(cli, world["leak"]) == before

    # retro-match runs on the restored candidate index: a record registered now finds the stored posting
    _records(tmp_path, cli, [("r2", "bob@acme.example")])
    (alert,) = cli("alerts", "list", "--json").jsonl()
    assert alert["records"] == 2


def test_restore_rebuilds_an_index_that_lags_the_database(
    world: dict[str, Any], cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup taken before a crawl's search batch was written: restore indexes what the database holds."""
    before = _answers(cli, world["leak"])
    import shutil

    shutil.rmtree(home / "search")
    shutil.rmtree(home / "index" / "candidates")
    archive = tmp_path / "lagging.tar.gz"
    assert cli("backup", str(archive)).code == 0
    _switch_home(monkeypatch, tmp_path / "restored")
    restored = cli("restore", str(archive), "--json")
    assert restored.code == 0, restored.err
    assert set(restored.json()["rebuilt"]) >= {"search", "candidates"}
    assert _answers(cli, world["leak"]) == before


def test_backup_while_writes_happen_is_consistent(
    world: dict[str, Any], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    stop = threading.Event()
    stored: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            i = 0
            while not stop.is_set() and i < 200:
                path = tmp_path / f"w{i}.txt"
                path.write_text(f"posting {i} walrus{i}\njane@acme.example:pw{i}\n" + "filler line\n" * 50)
                list(scan_paths(settings, [str(path)], store=True))
                stored.append(i)
                i += 1
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        while len(stored) < 3 and thread.is_alive():
            thread.join(0.05)
        archives = []
        for n in range(3):
            archive = tmp_path / f"live{n}.tar.gz"
            made = cli("backup", str(archive), "--json")
            assert made.code == 0, made.err
            archives.append(archive)
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    assert len(stored) > 3  # writes really overlapped the backups
    restored_home = _switch_home(monkeypatch, tmp_path / "restored")
    assert cli("restore", str(archives[-1])).code == 0
    with sqlite3.connect(restored_home / "leaksentinel.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        postings = conn.execute("SELECT count(*) FROM postings").fetchone()[0]
    assert postings >= 1
    # every restored posting is searchable, and no search hit points at a posting the database lacks
    found = cli("search", "jane@acme.example", "--limit", "1000", "--json").jsonl()
    assert len(found) == postings


def _entries(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(archive) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]


def _write(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _tampered(kind: str, archive: Path, out: Path) -> Path:
    entries = _entries(archive)
    manifest = json.loads(entries[0][1])
    if kind == "bytes":  # one byte of the database changed, manifest untouched
        for i, (info, data) in enumerate(entries):
            if info.name == "leaksentinel.db":
                entries[i] = (info, data[:-1] + bytes([data[-1] ^ 1]))
    elif kind == "traversal":  # a member named ../x, listed in the manifest too
        info = tarfile.TarInfo("evidence/../../escaped")
        entries.append((info, b"x"))
        manifest["files"].append({"path": info.name, "size": 1, "sha256": "0" * 64})
    elif kind == "dotdot":  # a member named ../x that the manifest does not list
        entries.append((tarfile.TarInfo("../escaped"), b"x"))
    elif kind == "absolute":
        entries.append((tarfile.TarInfo("/tmp/escaped"), b"x"))
    elif kind == "symlink":
        link = tarfile.TarInfo("evidence/00/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        entries.append((link, b""))
    elif kind == "hardlink":
        link = tarfile.TarInfo("evidence/00/hard")
        link.type, link.linkname = tarfile.LNKTYPE, "leaksentinel.db"
        entries.append((link, b""))
    elif kind == "extra":  # a file the manifest does not list
        entries.append((tarfile.TarInfo("evidence/00/extra"), b"x"))
    elif kind == "oversize":  # a member far larger than the manifest says (zeros: tiny once compressed)
        for i, (info, _data) in enumerate(entries):
            if info.name == "hash.key":
                entries[i] = (info, bytes(20_000_000))
    elif kind == "missing":
        entries = [e for e in entries if e[0].name != "hash.key"]
    elif kind == "deep-manifest":  # JSON nested past the parser's recursion limit
        entries[0] = (entries[0][0], b"[" * 200_000)
        return _write(out, entries)
    elif kind == "not-gzip":
        out.write_bytes(b"PK\x03\x04 not a tar.gz")
        return out
    if kind != "bytes":
        entries[0] = (entries[0][0], json.dumps(manifest).encode())
    return _write(out, entries)


@pytest.mark.parametrize(
    "kind",
    [
        "bytes",
        "traversal",
        "dotdot",
        "absolute",
        "symlink",
        "hardlink",
        "extra",
        "missing",
        "oversize",
        "deep-manifest",
        "not-gzip",
    ],
)
def test_restore_refuses_a_tampered_or_hostile_archive_and_writes_nothing(
    kind: str, world: dict[str, Any], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "good.tar.gz"
    assert cli("backup", str(archive)).code == 0
    bad = _tampered(kind, archive, tmp_path / f"bad-{kind}.tar.gz")
    target = _switch_home(monkeypatch, tmp_path / "restored")
    result = cli("restore", str(bad))
    assert result.code == 2, (result.out, result.err)
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert not target.exists()
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".restored.restore-")] == []


def test_restore_refuses_a_huge_member(
    world: dict[str, Any], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leaksentinel.backup as backup

    archive = tmp_path / "good.tar.gz"
    assert cli("backup", str(archive)).code == 0
    monkeypatch.setattr(backup, "MAX_MEMBER_BYTES", 1024)  # the database is larger than this
    target = _switch_home(monkeypatch, tmp_path / "restored")
    result = cli("restore", str(archive))
    assert result.code == 2 and "refused size" in result.err, result.err
    assert not target.exists()


def test_restore_refuses_a_home_that_has_a_database(
    world: dict[str, Any], cli: Any, home: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "home.tar.gz"
    assert cli("backup", str(archive)).code == 0
    db_before = (home / "leaksentinel.db").stat().st_mtime_ns
    result = cli("restore", str(archive), "--json")
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and "already has a database" in result.err
    assert (home / "leaksentinel.db").stat().st_mtime_ns == db_before


def test_restore_refuses_a_home_holding_other_files(
    world: dict[str, Any], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "home.tar.gz"
    assert cli("backup", str(archive)).code == 0
    other = _switch_home(monkeypatch, tmp_path / "other")
    other.mkdir()
    (other / "hash.key").write_text("another deployment's key")
    result = cli("restore", str(archive))
    assert result.code == 2 and "not empty" in result.err
    assert (other / "hash.key").read_text() == "another deployment's key"
    assert sorted(p.name for p in other.iterdir()) == ["hash.key"]


def test_backup_refuses_a_server_database_and_bad_destinations(
    world: dict[str, Any], cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "exists.tar.gz"
    archive.write_text("keep me")
    refused = cli("backup", str(archive))
    assert refused.code == 2 and "--force" in refused.err and archive.read_text() == "keep me"
    forced = cli("backup", str(archive), "--force", "--json")
    assert forced.code == 0 and forced.json()["files"] >= 4
    inside = cli("backup", str(home / "evidence" / "b.tar.gz"))
    assert inside.code == 2 and "inside the home" in inside.err
    monkeypatch.setenv("LEAKSENTINEL_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    pg = cli("backup", str(tmp_path / "pg.tar.gz"))
    assert pg.code == 2 and "pg_dump" in pg.err and pg.err.count("\n") == 1
    assert not (tmp_path / "pg.tar.gz").exists()


def test_backup_of_a_home_without_database_is_bad_input(cli: Any, tmp_path: Path) -> None:
    result = cli("backup", str(tmp_path / "b.tar.gz"))
    assert result.code == 2 and "no database" in result.err
    assert not os.path.exists(tmp_path / "b.tar.gz")


def test_restore_leaves_the_parent_folder_mode_alone(
    world: dict[str, Any], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new home is made 0700; the folder it lives in (``/srv``, say) is not the home's to tighten."""
    archive = tmp_path / "home.tar.gz"
    assert cli("backup", str(archive)).code == 0
    shared = tmp_path / "srv"
    shared.mkdir()
    os.chmod(shared, 0o755)
    target = _switch_home(monkeypatch, shared / "leaksentinel")
    assert cli("restore", str(archive)).code == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert sorted(p.name for p in shared.iterdir()) == ["leaksentinel"]  # no staging folder left behind
