"""Every technique dnstwist generates reaches `scan --json` and the stored alert: one posting names one
variant of each technique (bit flips and vowel swaps included), and each finding says which technique."""

from __future__ import annotations

from pathlib import Path

from pipelines.detection.lookalikes import variants

DOMAIN = "acme-bank.com"


def _one_per_technique() -> dict[str, str]:
    chosen: dict[str, str] = {}
    for variant, technique in variants(DOMAIN):
        chosen.setdefault(technique, variant)
    return chosen


def test_each_technique_is_reported_with_its_variant(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    chosen = _one_per_technique()
    for technique in (
        "omission",
        "homoglyph",
        "idn-homoglyph",
        "bit-flip",
        "tld-swap",
        "vowel-swap",
        "word-addition",
    ):
        assert technique in chosen, technique
    assert cli("tenant", "add", "acme-bank", "--domain", DOMAIN).code == 0
    lines = ["kit config"] + [f"login{i}@{variant}:pw{i}" for i, variant in enumerate(chosen.values())]
    posting = tmp_path / "kit.txt"
    posting.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("scan", "--store", "--json", str(posting))
    assert result.code == 0, result.err
    looks = {f["watch"]: f for f in result.jsonl() if f["kind"] == "lookalike"}
    assert {v: looks[v]["technique"] for v in chosen.values() if v in looks} == {
        v: t for t, v in chosen.items()
    }
    # the subdomain variant (a.cme-bank.com) is also a host under the omission variant cme-bank.com: both
    # are reported; nothing else is
    assert set(looks) - set(chosen.values()) <= {
        v.split(".", 1)[1] for v in chosen.values() if v.count(".") > 1
    }
    for variant, finding in looks.items():
        assert finding["severity"] == "high" and finding["masked"].endswith(variant)
    alerts = cli("alerts", "list", "--json").jsonl()
    assert len(alerts) == 1 and alerts[0]["kinds"] == ["lookalike"]
