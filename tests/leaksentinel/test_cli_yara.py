"""YARA watches through the command line: add (compiled, or refused in one line), scan, list, remove."""

from __future__ import annotations

from pathlib import Path

RULES = """rule ProjectFalcon : internal {
    meta:
        owner = "acme"
    strings:
        $code = "PROJECT-FALCON" nocase
        $key = /falcon_[0-9a-f]{8}/
    condition:
        any of them
}

rule NeverHere {
    strings:
        $a = "this string is in no posting"
    condition:
        $a
}
"""

POSTING = "dump from the forum\nnothing yet\nleaked: Project-Falcon roadmap, key falcon_deadbeef\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _scan(cli, path: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    result = cli("scan", str(path), "--json")
    assert result.code == 0, result.err
    return result.jsonl()


def test_yara_rule_gives_finding_per_tenant_and_can_be_removed(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme").code == 0
    assert cli("tenant", "add", "globex").code == 0
    rules = _write(tmp_path, "acme.yar", RULES)
    added = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json")
    assert added.code == 0, added.err
    out = added.jsonl()[-1]
    assert out["kind"] == "yara" and out["name"] == "acme.yar"
    assert out["rules"] == ["ProjectFalcon", "NeverHere"] and out["created"] is True
    again = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json")
    assert again.code == 0 and again.jsonl()[-1]["id"] == out["id"] and again.jsonl()[-1]["created"] is False

    posting = _write(tmp_path, "post.txt", POSTING)
    findings = _scan(cli, posting)
    assert [(f["tenant"], f["kind"], f["watch"], f["line"]) for f in findings] == [
        ("acme", "yara", "ProjectFalcon", 3)
    ]
    assert findings[0]["severity"] == "medium" and findings[0]["posting"] == str(posting)

    listed = cli("watch", "list", "--tenant", "acme", "--json")
    assert listed.code == 0
    rows = [r for r in listed.jsonl() if r["kind"] == "yara"]
    assert [(r["id"], r["name"], r["rules"]) for r in rows] == [
        (out["id"], "acme.yar", ["ProjectFalcon", "NeverHere"])
    ]
    assert "acme.yar" in cli("watch", "list", "--tenant", "acme").out

    # another tenant cannot remove it, and never sees its findings
    assert cli("watch", "remove", "--tenant", "globex", str(out["id"])).code != 0
    assert cli("watch", "remove", "--tenant", "acme", str(out["id"])).code == 0
    assert _scan(cli, posting) == []
    assert [
        r for r in cli("watch", "list", "--tenant", "acme", "--json").jsonl() if r["kind"] == "yara"
    ] == []


def test_rules_of_one_tenant_never_fire_for_another(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme").code == 0
    assert cli("tenant", "add", "globex").code == 0
    # same rule name in both tenants' files; globex's global rule must not silence acme's rules
    acme = _write(tmp_path, "a.yar", 'rule Leak { strings: $a = "falcon_" condition: $a }')
    globex = _write(
        tmp_path,
        "g.yar",
        'global rule OnlyBig { condition: filesize > 100000 }\nrule Leak { strings: $a = "falcon_" condition: $a }',
    )
    assert cli("watch", "add", "--tenant", "acme", "--yara", str(acme)).code == 0
    assert cli("watch", "add", "--tenant", "globex", "--yara", str(globex)).code == 0
    findings = _scan(cli, _write(tmp_path, "post.txt", POSTING))
    assert [(f["tenant"], f["watch"]) for f in findings] == [("acme", "Leak")]


def test_rule_that_does_not_match_gives_nothing(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme").code == 0
    rules = _write(tmp_path, "r.yar", 'rule Other { strings: $a = "globex-secret" condition: $a }')
    assert cli("watch", "add", "--tenant", "acme", "--yara", str(rules)).code == 0
    assert _scan(cli, _write(tmp_path, "post.txt", POSTING)) == []


def test_console_module_output_does_not_reach_stdout(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme").code == 0
    rules = _write(
        tmp_path,
        "c.yar",
        'import "console"\nrule Chatty { condition: console.log("NOISE") and filesize > 0 }',
    )
    assert cli("watch", "add", "--tenant", "acme", "--yara", str(rules)).code == 0
    result = cli("scan", str(_write(tmp_path, "post.txt", POSTING)), "--json")
    assert result.code == 0 and "NOISE" not in result.out
    assert [(f["watch"], f["line"]) for f in result.jsonl()] == [("Chatty", 1)]


def test_bad_rules_are_exit_2_with_one_line(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme").code == 0
    cases = {
        "syntax.yar": ('rule Broken { strings: $a = "x" condition: $b }', "undefined string"),
        "include.yar": ('include "/etc/passwd"\nrule R { condition: true }', "includes are disabled"),
        "empty.yar": ("// nothing\n", "no public YARA rule"),
        "binary.yar": ("\x00\x01rule", "NUL"),
    }
    for name, (text, words) in cases.items():
        result = cli("watch", "add", "--tenant", "acme", "--yara", str(_write(tmp_path, name, text)))
        assert result.code == 2, (name, result.out, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and name in lines[0], (name, result.err)
        assert "Traceback" not in result.err
    missing = cli("watch", "add", "--tenant", "acme", "--yara", str(tmp_path / "absent.yar"))
    assert missing.code == 2 and len(missing.err.strip().splitlines()) == 1
    assert [
        r for r in cli("watch", "list", "--tenant", "acme", "--json").jsonl() if r["kind"] == "yara"
    ] == []
