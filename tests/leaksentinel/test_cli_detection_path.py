"""Acceptance of the walking skeleton's command line: hash -> watch add -> scan, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _register(cli, tmp_path: Path, csv_text: str, *extra: str) -> Path:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(csv_text, encoding="utf-8")
    hashed = cli("hash", "--csv", str(csv_path), "--key-column", "id", *extra)
    assert hashed.code == 0, hashed.err
    out = tmp_path / "customers.jsonl"
    out.write_text(hashed.out, encoding="utf-8")
    return out


def test_scan_finds_upper_case_email_and_reformatted_cn_phone(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme", "--domain", "acme.example", "--json").code == 0
    records = _register(cli, tmp_path, "id,email\nc-1,jane.doe@acme.example\nc-2,bob@other.example\n")
    phones = cli("hash", "--type", "phone", "--region", "CN", stdin="13800138000\n")
    assert phones.code == 0, phones.err
    phone_rows = phones.jsonl()
    assert phone_rows[0]["region"] == "CN" and phone_rows[0]["v"] == 1
    assert set(phone_rows[0]["fields"]) == {"phone"} and len(phone_rows[0]["fields"]["phone"]) == 32
    phone_file = tmp_path / "phones.jsonl"
    phone_file.write_text(phones.out, encoding="utf-8")
    assert cli("watch", "add", "--tenant", "acme", "--records", str(records)).code == 0
    assert cli("watch", "add", "--tenant", "acme", "--records", str(phone_file)).code == 0

    posting = tmp_path / "paste.txt"
    posting.write_text("dump\nJANE.DOE@ACME.EXAMPLE:hunter2\ncall +86 138 0013 8000 now\n", encoding="utf-8")
    result = cli("scan", str(posting), "--json")
    assert result.code == 0, result.err
    findings = result.jsonl()
    records_found = {(f["record_key"], tuple(f["fields"])) for f in findings if f["kind"] == "record"}
    assert ("c-1", ("email",)) in records_found
    assert ("1", ("phone",)) in records_found
    email_finding = next(f for f in findings if f.get("record_key") == "c-1")
    assert email_finding == {
        "posting": str(posting),
        "tenant": "acme",
        "kind": "record",
        "record_key": "c-1",
        "fields": ["email"],
        "line": 2,
        "severity": email_finding["severity"],
        "masked": email_finding["masked"],
    }
    assert email_finding["severity"] in {"medium", "high"}
    assert "jane.doe" not in email_finding["masked"].lower()
    # The domain watch from `tenant add --domain` is a finding of its own kind.
    assert any(f["kind"] == "domain" and f["watch"] == "acme.example" for f in findings)
    # scan stores nothing without --store.
    assert cli("alerts", "list", "--json").lines == []


def test_scan_store_raises_one_alert_per_posting(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme")
    records = _register(
        cli, tmp_path, "id,email,phone\nr1,a@acme.example,13800138000\nr2,b@acme.example,\n", "--region", "CN"
    )
    cli("watch", "add", "--tenant", "acme", "--records", str(records))
    posting = tmp_path / "leak.csv"
    posting.write_text("email,phone\nA@acme.example,+8613800138000\nb@ACME.example,\n", encoding="utf-8")
    result = cli("scan", "--store", "--json", str(posting))
    assert result.code == 0, result.err
    assert sorted(f["record_key"] for f in result.jsonl()) == ["r1", "r2"]
    assert next(f for f in result.jsonl() if f["record_key"] == "r1")["fields"] == ["email", "phone"]
    alerts = cli("alerts", "list", "--json").jsonl()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["tenant"] == "acme" and alert["records"] == 2 and alert["new_records"] == 2
    assert alert["source"] == "local" and alert["sightings"] == [str(posting)] and alert["status"] == "new"
    assert set(alert) >= {
        "id",
        "tenant",
        "severity",
        "status",
        "kinds",
        "records",
        "new_records",
        "url",
        "source",
        "first_seen",
        "sightings",
    }
    # Storing the same file again is not a new posting and raises nothing.
    cli("scan", "--store", str(posting))
    assert len(cli("alerts", "list", "--json").jsonl()) == 1
    assert cli("alerts", "ack", str(alert["id"])).code == 0
    assert cli("alerts", "list", "--status", "acked", "--json").jsonl()[0]["id"] == alert["id"]


def test_tenant_add_and_list(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    added = cli(
        "tenant",
        "add",
        "acme-bank",
        "--domain",
        "acme.example",
        "--domain",
        "acme.test",
        "--region",
        "cn",
        "--json",
    )
    assert added.code == 0, added.err
    obj = added.json()
    assert obj["name"] == "acme-bank" and obj["domains"] == ["acme.example", "acme.test"]
    assert obj["api_key"].startswith("lsk_") and isinstance(obj["id"], int)
    listed = cli("tenant", "list", "--json").jsonl()
    assert [t["name"] for t in listed] == ["acme-bank"] and "api_key" not in listed[0]
    watches = cli("watch", "list", "--tenant", "acme-bank", "--json").jsonl()
    assert sorted(w["value"] for w in watches if w["kind"] == "domain") == ["acme.example", "acme.test"]
    # Adding a watch that exists is not an error.
    assert cli("watch", "add", "--tenant", "acme-bank", "--domain", "acme.example").code == 0


def _snapshot(home: Path) -> dict[str, object]:
    """Every row of every table of the test's database (the home's SQLite file, or PostgreSQL), read
    without migrating it, so a refused command can be shown to have written nothing."""
    from sqlalchemy import create_engine, inspect, text

    url = os.environ.get("LEAKSENTINEL_DATABASE_URL") or ""
    if not url:
        if not (home / "leaksentinel.db").exists():
            return {}
        url = f"sqlite:///{home / 'leaksentinel.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            tables = inspect(con).get_table_names()
            return {t: con.execute(text(f'select * from "{t}" order by 1')).all() for t in tables}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hash", "--csv", "{bad_csv}", "--key-column", "id"], "malformed CSV"),
        (["hash", "--csv", "{unknown_type_csv}"], "unknown field type"),
        (["hash", "--type", "shoe_size", "-"], "unknown field type"),
        (["source", "add", "s1", "--kind", "pastebin", "--url", "ftp://example.org/"], "http"),
        (["source", "add", "s2", "--kind", "pastebin", "--url", "file:///etc/passwd"], "http"),
        (["watch", "add", "--tenant", "nobody", "--domain", "x.example"], "unknown tenant"),
        (["subscribe", "--tenant", "nobody", "--webhook", "http://127.0.0.1:9/"], "unknown tenant"),
        (["alerts", "list", "--tenant", "nobody"], "unknown tenant"),
        (["watch", "add", "--tenant", "acme", "--records", "{bad_records}"], "not a JSON object"),
        (["crawl", "no-such-source"], "unknown source"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    cli,
    tmp_path: Path,
    home: Path,
    args: list[str],  # type: ignore[no-untyped-def]
    message: str,
) -> None:
    cli("tenant", "add", "acme")
    files = {
        "bad_csv": 'id,email\n1,"a@b.example\n2,c@d.example,extra\n',
        "unknown_type_csv": "id,email,shoe_size\n1,a@b.example,44\n",
        "bad_records": '{"record_key": "1", "fields": {"email": "' + "ab" * 16 + '"}}\nnot json\n',
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.txt"
        paths[name].write_text(text, encoding="utf-8")
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    before = _snapshot(home)
    result = cli(*args, stdin="")
    assert result.code == 2, (result.out, result.err)
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    assert _snapshot(home) == before


def test_bad_input_through_the_console_script_has_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "LEAKSENTINEL_HOME": str(tmp_path / "h")}
    bad = tmp_path / "bad.csv"
    bad.write_text("id,email\n1,a@b.example,x\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "leaksentinel", "hash", "--csv", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_hash_csv_output_shape(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("email,phone,name\nA@X.example,+44 20 7946 0958,Jane Doe\n", encoding="utf-8")
    rows = cli("hash", "--csv", str(csv_path)).jsonl()
    assert rows == [{"record_key": "1", "fields": rows[0]["fields"], "v": 1}]
    assert set(rows[0]["fields"]) == {"email", "phone", "name"}
    again = cli("hash", "--csv", str(csv_path)).jsonl()
    assert again == rows  # one key per home: hashes are stable
    lower = tmp_path / "d.csv"
    lower.write_text("email\na@x.example\n", encoding="utf-8")
    assert cli("hash", "--csv", str(lower)).jsonl()[0]["fields"]["email"] == rows[0]["fields"]["email"]
    assert json.dumps(rows).count("a@x") == 0


@pytest.mark.sqlite_only("a home is a separate deployment only when its database is the home's SQLite file")
def test_config_file_anywhere_on_the_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other_home = tmp_path / "other-home"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'home = "{other_home}"\n')
    assert cli("tenant", "add", "acme", "--config", str(cfg)).code == 0
    assert [t["name"] for t in cli("--config", str(cfg), "tenant", "list", "--json").jsonl()] == ["acme"]
    assert cli("tenant", "list", "--json").jsonl() == []  # the default home is another deployment
    assert (other_home / "leaksentinel.db").exists()


def test_hash_never_opens_a_network_connection(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("leaksentinel hash tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email,phone\n1,a@b.example,13800138000\n")
    result = cli("hash", "--csv", str(csv_path), "--key-column", "id", "--region", "CN")
    assert result.code == 0, result.err
    assert set(result.json()["fields"]) == {"email", "phone"}
    doc = tmp_path / "d.txt"
    doc.write_text("confidential minutes " * 50)
    assert cli("hash", "--document", str(doc)).code == 0
    assert cli("hash", "--type", "email", "-", stdin="x@y.example\n").code == 0
