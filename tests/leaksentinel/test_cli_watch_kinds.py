"""Keyword, regex, document and secret findings through the command line, as the contract shapes them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any


def _words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = [
        "ledger",
        "account",
        "transfer",
        "branch",
        "audit",
        "quarter",
        "margin",
        "client",
        "vault",
        "policy",
        "revenue",
        "merger",
        "forecast",
        "salary",
        "board",
        "strategy",
        "risk",
        "capital",
        "reserve",
        "loan",
    ]
    return [rng.choice(vocab) + str(rng.randint(0, 99)) for _ in range(n)]


def test_keyword_regex_document_and_secret_findings(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme", "--domain", "acme-bank.example").code == 0
    assert cli("watch", "add", "--tenant", "acme", "--keyword", "ＡＣＭＥ银行").code == 0
    assert cli("watch", "add", "--tenant", "acme", "--keyword", "acme银行").code == 0  # exists: not an error
    assert cli("watch", "add", "--tenant", "acme", "--regex", r"ACME-\d{6}").code == 0
    document = tmp_path / "board-minutes.txt"
    words = _words(3000, 1)
    document.write_text(" ".join(words), encoding="utf-8")
    fingerprint = cli("hash", "--document", str(document))
    assert fingerprint.code == 0, fingerprint.err
    assert words[0] not in fingerprint.out and '"fingerprints"' in fingerprint.out
    fp_file = tmp_path / "minutes.jsonl"
    fp_file.write_text(fingerprint.out)
    assert (
        cli("watch", "add", "--tenant", "acme", "--document", str(fp_file), "--name", "board minutes").code
        == 0
    )
    kinds = sorted(w["kind"] for w in cli("watch", "list", "--tenant", "acme", "--json").jsonl())
    assert kinds == ["document", "domain", "keyword", "regex"]

    half = " ".join(words[:1500]).upper().replace(" ", "\n  ")
    posting = tmp_path / "post.txt"
    posting.write_text(
        "出售 acme银行 内部资料\n"
        f"ticket ACME-123456 from ops@acme-bank.example\n"
        "aws key AKIAIOSFODNN7EXAMPLF in config\n"
        f"{half}\n",
        encoding="utf-8",
    )
    findings = cli("scan", "--json", str(posting)).jsonl()
    by_kind = {f["kind"]: f for f in findings}
    assert by_kind["keyword"]["watch"] == "acme银行" and by_kind["keyword"]["line"] == 1
    assert by_kind["regex"]["watch"] == r"ACME-\d{6}" and by_kind["regex"]["line"] == 2
    assert "123456" not in by_kind["regex"]["masked"]
    assert by_kind["domain"]["watch"] == "acme-bank.example"
    doc = by_kind["document"]
    assert doc["watch"] == "board minutes" and abs(doc["overlap"] - 0.5) <= 0.1
    assert "record_key" not in doc and "fields" not in doc
    assert by_kind["secret"]["line"] == 3 and "AKIAIOSFODNN7EXAMPLF" not in by_kind["secret"]["masked"]
    assert all(f["tenant"] == "acme" for f in findings)


def test_a_regex_re2_rejects_is_refused_with_the_reason(cli) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme")
    result = cli("watch", "add", "--tenant", "acme", "--regex", r"(a)\1")
    assert result.code == 2 and "RE2" in result.err
    assert cli("watch", "list", "--tenant", "acme", "--json").jsonl() == []


def test_a_document_fingerprint_of_another_deployment_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme")
    bad = tmp_path / "fp.jsonl"
    bad.write_text(
        '{"kind": "document", "v": 1, "k": 25, "window": 20, "keyed": false, "fingerprints": ["00000000000000ff"], "n": 1}\n'
    )
    result = cli("watch", "add", "--tenant", "acme", "--document", str(bad), "--name", "x")
    assert result.code == 2 and "key" in result.err


def test_deeply_nested_json_in_records_is_exit_2_with_one_line(cli: Any, tmp_path: Path) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"record_key": "a", "fields": ' + "[" * 100_000 + "]" * 100_000 + ', "v": 1}\n')
    assert cli("tenant", "add", "acme").code == 0
    out = cli("watch", "add", "--tenant", "acme", "--records", str(deep))
    assert out.code == 2 and "nested too deeply" in out.err and len(out.err.strip().splitlines()) == 1
