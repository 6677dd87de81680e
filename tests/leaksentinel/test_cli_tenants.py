"""The CLI resolves a tenant's name or id once, at its edge; names that would read as ids are refused;
`unsubscribe --tenant T ID` (with the audit log); record keys with control characters are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_names_of_digits_or_with_control_characters_are_refused(cli: Any) -> None:
    for name in ("1", "007", "acme\n", "ac\x00me"):
        r = cli("tenant", "add", name)
        assert r.code == 2, (name, r.out, r.err)
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    assert cli("tenant", "add", "acme1", "--json").code == 0
    r = cli("source", "add", "42", "--kind", "rss", "--url", "http://127.0.0.1:9/feed")
    assert r.code == 2 and "digits" in r.err


def test_commands_accept_the_name_or_the_id(cli: Any) -> None:
    acme = cli("tenant", "add", "acme", "--json").json()
    cli("tenant", "add", "globex", "--json")
    by_id = cli("watch", "add", "--tenant", str(acme["id"]), "--keyword", "Secret", "--json").json()
    assert by_id["tenant"] == "acme"
    listed = cli("watch", "list", "--tenant", "acme", "--json").jsonl()
    assert [w["value"] for w in listed if w["kind"] == "keyword"] == ["secret"]
    assert (
        cli("key", "add", "--role", "tenant_viewer", "--tenant", str(acme["id"]), "--json").json()["tenant"]
        == "acme"
    )
    for missing in ("99", "nope"):
        r = cli("alerts", "list", "--tenant", missing)
        assert r.code in (1, 2) and "unknown tenant" in r.err, (missing, r.code, r.err)


def test_unsubscribe_removes_one_subscription_of_that_tenant(cli: Any) -> None:
    cli("tenant", "add", "acme")
    cli("tenant", "add", "globex")
    mine = cli("subscribe", "--tenant", "acme", "--email", "soc@acme.example", "--json").json()
    theirs = cli("subscribe", "--tenant", "globex", "--email", "soc@globex.example", "--json").json()
    r = cli("unsubscribe", "--tenant", "acme", str(theirs["id"]))
    assert r.code != 0 and "no subscription" in r.err  # another tenant's id
    r = cli("unsubscribe", "--tenant", "acme", str(mine["id"]), "--json")
    assert r.code == 0, r.err
    assert r.json()["removed"] is True and r.json()["tenant"] == "acme"
    assert cli("unsubscribe", "--tenant", "acme", "abc").code == 2
    audit = cli("audit", "--json").jsonl()
    assert audit[0]["action"] == "subscription.remove" and audit[0]["object_id"] == str(mine["id"])


def test_record_keys_with_control_characters_are_refused(cli: Any, tmp_path: Path) -> None:
    cli("tenant", "add", "acme")
    records = tmp_path / "r.jsonl"
    line = {"record_key": "c-1\x00hidden", "fields": {"email": "ab" * 32}, "v": 1}
    records.write_text(json.dumps(line) + "\n")
    r = cli("watch", "add", "--tenant", "acme", "--records", str(records))
    assert r.code == 2 and "control character" in r.err
