"""Retro-match: records registered after a posting was stored are found in it, with an alert."""

from __future__ import annotations

from pathlib import Path


def test_registering_records_later_finds_them_in_stored_postings(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "early").code == 0
    assert cli("tenant", "add", "late").code == 0
    leak = tmp_path / "leak.txt"
    leak.write_text("fresh dump\nalice@late.example:pw1\nbob@late.example:pw2\ncarol@else.example:x\n")
    assert cli("scan", "--store", str(leak)).code == 0
    assert cli("alerts", "list", "--json").jsonl() == []

    csv_path = tmp_path / "late.csv"
    csv_path.write_text("id,email\nL1,alice@late.example\nL2,bob@late.example\nL3,nobody@late.example\n")
    hashed = cli("hash", "--csv", str(csv_path), "--key-column", "id")
    records = tmp_path / "late.jsonl"
    records.write_text(hashed.out)
    added = cli("watch", "add", "--tenant", "late", "--records", str(records), "--json")
    assert added.code == 0, added.err
    assert added.json()["retro"] == {"postings": 1, "findings": 2, "alerts": 1}
    alerts = cli("alerts", "list", "--json").jsonl()
    assert len(alerts) == 1 and alerts[0]["tenant"] == "late" and alerts[0]["records"] == 2
    assert alerts[0]["sightings"] == [str(leak)]
    # Registering the same records again finds nothing new.
    again = cli("watch", "add", "--tenant", "late", "--records", str(records), "--json")
    assert again.json()["retro"]["alerts"] == 0 and again.json()["retro"]["findings"] == 0
    assert len(cli("alerts", "list", "--json").jsonl()) == 1
