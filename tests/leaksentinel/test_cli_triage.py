"""Triage from the command line (issue 15, point 2): the contract's ``alerts ack|resolve|false-positive ID``
keep working as written (a reason is optional there, with a note on stderr), ``--reason`` is kept on the
timeline, invalid transitions and bad input exit 2 with one line, and ``assign``, ``note``, ``reopen``,
``show`` and the ``list`` filters work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def alert_id(cli: Any, tmp_path: Path) -> int:
    assert cli("tenant", "add", "acme", "--domain", "acme.example", "--json").code == 0
    csv = tmp_path / "c.csv"
    csv.write_text("id,email\nc-1,jane@acme.example\n")
    hashed = cli("hash", "--csv", str(csv), "--key-column", "id")
    records = tmp_path / "r.jsonl"
    records.write_text(hashed.out)
    assert cli("watch", "add", "--tenant", "acme", "--records", str(records)).code == 0
    leak = tmp_path / "leak.txt"
    leak.write_text("dump\njane@acme.example:hunter2\n")
    assert cli("scan", "--store", str(leak), "--json").code == 0
    return int(cli("alerts", "list", "--json").jsonl()[0]["id"])


def test_contract_forms_work_without_a_reason_and_say_so(cli: Any, alert_id: int) -> None:
    r = cli("alerts", "ack", str(alert_id))
    assert r.code == 0 and r.err == "" and f"alert {alert_id}: acked" in r.out
    r = cli("alerts", "resolve", str(alert_id), "--json")
    assert r.code == 0 and r.json()["status"] == "resolved" and r.json()["status_reason"] is None
    assert len(r.err.splitlines()) == 1 and "--reason" in r.err
    story = cli("alerts", "show", str(alert_id), "--json").json()
    assert [(e["action"], e["to"], e["text"]) for e in story["timeline"]] == [
        ("status", "acked", None),
        ("status", "resolved", None),
    ]
    assert all(e["actor"].startswith("cli") for e in story["timeline"])


def test_reason_assignee_and_notes_reach_the_timeline(cli: Any, alert_id: int) -> None:
    a = str(alert_id)
    assert cli("alerts", "assign", a, "ana@acme.example").code == 0
    assert cli("alerts", "note", a, "customer told by phone").code == 0
    r = cli("alerts", "false-positive", a, "--reason", "our own test account", "--json")
    assert r.code == 0 and r.err == "" and r.json()["status_reason"] == "our own test account"
    assert r.json()["assignee"] == "ana@acme.example"
    assert cli("alerts", "reopen", a).code == 0
    assert cli("alerts", "assign", a, "--clear").code == 0
    story = cli("alerts", "show", a, "--json").json()
    assert [(e["action"], e["from"], e["to"], e["text"]) for e in story["timeline"]] == [
        ("assign", None, "ana@acme.example", None),
        ("note", None, None, "customer told by phone"),
        ("status", "new", "false_positive", "our own test account"),
        ("status", "false_positive", "new", None),
        ("assign", "ana@acme.example", None, None),
    ]
    human = cli("alerts", "show", a).out
    assert "1 acme customer record with passwords on leak.txt" in human
    assert "j***@acme.example" in human and "hunter2" not in human and "Reset the passwords" in human


def test_invalid_transitions_and_bad_input_exit_2_with_one_line(cli: Any, alert_id: int) -> None:
    a = str(alert_id)
    cases = [
        (("alerts", "reopen", a), "cannot be reopened"),
        (("alerts", "note", a, "   "), "empty"),
        (("alerts", "assign", a), "--clear"),
        (("alerts", "assign", a, "x", "--clear"), "--clear"),
        (("alerts", "assign", a, "a\x1b[31mb"), "control character"),
        (("alerts", "ack", "999999"), "unknown alert"),
        (("alerts", "list", "--kind", "bogus"), "unknown finding kind"),
        (("alerts", "list", "--since", "last week"), "date"),
    ]
    for args, words in cases:
        r = cli(*args)
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and words in r.err, (args, r.err)
        assert "Traceback" not in r.err
    assert cli("alerts", "ack", a).code == 0
    r = cli("alerts", "ack", a)
    assert (
        r.code == 2
        and "acked: it cannot be acknowledged (possible: resolve, false-positive, reopen)" in r.err
    )


def test_list_filters(cli: Any, alert_id: int) -> None:
    def ids(*args: str) -> list[int]:
        r = cli("alerts", "list", "--json", *args)
        assert r.code == 0, r.err
        return [a["id"] for a in r.jsonl()]

    assert ids("--kind", "record") == [alert_id] and ids("--kind", "secret") == []
    assert ids("--source", "local") == [alert_id] and ids("--source", "elsewhere") == []
    assert ids("--since", "2000-01-01") == [alert_id] and ids("--until", "2000-01-01") == []
    cli("alerts", "assign", str(alert_id), "ana")
    assert ids("--assignee", "ana") == [alert_id] and ids("--assignee", "bob") == []
    assert json.loads(cli("alerts", "list", "--json").lines[0])["assignee"] == "ana"


def test_show_never_sends_escape_sequences_to_the_terminal(cli: Any, alert_id: int, tmp_path: Path) -> None:
    hostile = tmp_path / "dump\x1b[2J.txt"
    hostile.write_text("again\njane@acme.example:hunter2\nmore words here\n")
    assert cli("scan", "--store", str(hostile)).code == 0
    newest = max(a["id"] for a in cli("alerts", "list", "--json").jsonl())
    out = cli("alerts", "show", str(newest)).out
    assert "\x1b" not in out and "dump\\x1b[2J.txt" in out
