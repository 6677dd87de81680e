"""docs/security-teams.md's triage walkthrough runs as written: every ``leaksentinel`` command of its
section 5, in order, on a home with two alerts of acme-bank (the doc's 12 and 13), exits 0; and the
history it leaves is the one the doc describes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "security-teams.md"


def _walkthrough() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 5. Triage") : text.index("## 6.")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("leaksentinel "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


@pytest.fixture
def two_alerts(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    monkeypatch.chdir(tmp_path)
    assert cli("tenant", "add", "acme-bank", "--domain", "acme-bank.example").code == 0
    csv = tmp_path / "c.csv"
    csv.write_text("id,email\nc-1,jane@acme-bank.example\nc-2,test@acme-bank.example\n")
    (tmp_path / "r.jsonl").write_text(cli("hash", "--csv", str(csv), "--key-column", "id").out)
    assert cli("watch", "add", "--tenant", "acme-bank", "--records", "r.jsonl").code == 0
    (tmp_path / "combo.txt").write_text("combo\njane@acme-bank.example:Winter2026!\n")
    (tmp_path / "sample.txt").write_text("a sample with test@acme-bank.example in it\n")
    assert cli("scan", "--store", "combo.txt", "sample.txt").code == 0
    ids = [a["id"] for a in cli("alerts", "list", "--json").jsonl()]
    assert len(ids) == 2
    return ids[0], ids[1]


def test_the_walkthrough_runs_as_written(cli: Any, two_alerts: tuple[int, int]) -> None:
    commands = _walkthrough()
    assert [c[:2] for c in commands] == [
        ["alerts", "list"],
        ["alerts", "ack"],
        ["alerts", "assign"],
        ["alerts", "note"],
        ["alerts", "evidence"],
        ["evidence", "key"],
        ["evidence", "verify"],
        ["alerts", "resolve"],
        ["alerts", "false-positive"],
        ["alerts", "reopen"],
        ["alerts", "show"],
    ]
    ids = {"12": str(two_alerts[0]), "13": str(two_alerts[1])}
    for args in commands:
        args = [ids.get(a, a).replace("alert-12", f"alert-{two_alerts[0]}") for a in args]
        r = cli(*args)
        assert r.code == 0, (args, r.err)
        if args[:2] == ["alerts", "list"]:
            assert [a["id"] for a in cli(*args, "--json").jsonl()] == list(two_alerts)
    story = cli("alerts", "show", str(two_alerts[0]), "--json").json()
    assert [(e["action"], e["to"]) for e in story["timeline"]] == [
        ("status", "acked"),
        ("assign", "soc-oncall@acme-bank.example"),
        ("note", None),
        ("status", "resolved"),
        ("status", "new"),
    ]
    assert story["timeline"][3]["text"].startswith("passwords reset for the 54 customers")
    dismissed = cli("alerts", "show", str(two_alerts[1]), "--json").json()
    assert (dismissed["status"], dismissed["status_reason"]) == ("false_positive", "our own test accounts")
