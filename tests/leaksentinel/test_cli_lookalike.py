"""Look-alike domain watches through the command line: a phishing kit's logins reach the brand owner."""

from __future__ import annotations

from pathlib import Path

PHISHING_KIT = """# kit config -- harvested logins
$to = "drop@mailbox.example";
jane.doe@acme-bank-secure.com:Summer2024!
bob@acmebank.com:hunter2
eve@acme-bnak.com:qwerty
mallory@{idn}:letmein
https://login.acrne-bank.com/verify?id=1
panel: acme-bank.net/admin
"""


def _scan(cli, tmp_path: Path, text: str) -> list[dict]:  # type: ignore[no-untyped-def]
    posting = tmp_path / "posting.txt"
    posting.write_text(text, encoding="utf-8")
    result = cli("scan", str(posting), "--json")
    assert result.code == 0, result.err
    return result.jsonl()


def test_phishing_kit_logins_give_lookalike_findings(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme-bank", "--domain", "acme-bank.com", "--json").code == 0
    assert cli("tenant", "add", "other", "--domain", "other-corp.org", "--json").code == 0
    idn = "acme-bánk.com".encode("idna").decode("ascii")
    assert idn.startswith("xn--acme-bnk-")
    findings = _scan(cli, tmp_path, PHISHING_KIT.format(idn=idn))
    looks = {f["watch"]: f for f in findings if f["kind"] == "lookalike"}
    assert set(looks) == {
        "acme-bank-secure.com",
        "acmebank.com",
        "acme-bnak.com",
        idn,
        "acrne-bank.com",
        "acme-bank.net",
    }
    assert {f["tenant"] for f in findings} == {"acme-bank"}
    assert looks["acme-bank-secure.com"]["technique"] == "word-addition"
    assert looks["acmebank.com"]["technique"] == "omission"
    assert looks["acme-bnak.com"]["technique"] == "transposition"
    assert looks[idn]["technique"] == "idn-homoglyph"
    assert looks["acrne-bank.com"]["technique"] == "homoglyph"
    assert looks["acme-bank.net"]["technique"] == "tld-swap"
    assert looks["acme-bank-secure.com"]["line"] == 3
    assert looks["acme-bank-secure.com"]["masked"].endswith("@acme-bank-secure.com")
    assert "jane.doe" not in looks["acme-bank-secure.com"]["masked"]
    assert looks["acme-bank-secure.com"]["severity"] == "high"
    assert looks["acrne-bank.com"]["severity"] == "medium" and "masked" not in looks["acrne-bank.com"]
    assert not [f for f in findings if f["kind"] == "domain"]


def test_unicode_idn_written_form_is_found(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme-bank", "--domain", "acme-bank.com").code == 0
    findings = _scan(cli, tmp_path, "combo list\nzed@acme-bánk.com:pw\n")
    assert [(f["kind"], f["watch"], f["line"]) for f in findings] == [
        ("lookalike", "acme-bánk.com".encode("idna").decode("ascii"), 2)
    ]


def test_unrelated_domains_and_embedded_names_give_nothing(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme-bank", "--domain", "acme-bank.com").code == 0
    text = (
        "user@example.com:pw\nhttps://wikipedia.org/wiki/Bank\n"
        # a variant inside a longer host is not that host: xacmebank.com, acmebank.com.evil.net
        "mail xacmebank.com and acmebank.com.evil.net and acme-bank.community\n"
    )
    assert _scan(cli, tmp_path, text) == []


def test_exact_domain_gives_domain_only(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert (
        cli("tenant", "add", "acme-bank", "--domain", "acme-bank.com", "--domain", "acme-bank.net").code == 0
    )
    text = "ceo@acme-bank.com:pw\nhttps://mail.acme-bank.com/owa\nit@acme-bank.net:pw2\n"
    findings = _scan(cli, tmp_path, text)
    assert {f["kind"] for f in findings} == {"domain"}
    assert {f["watch"] for f in findings} == {"acme-bank.com", "acme-bank.net"}


def test_removed_domain_watch_stops_its_lookalikes(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    added = cli("tenant", "add", "acme-bank", "--json")
    assert added.code == 0, added.err
    watch = cli("watch", "add", "--tenant", "acme-bank", "--domain", "acme-bank.com", "--json")
    assert watch.code == 0, watch.err
    text = "bob@acmebank.com:hunter2\n"
    assert [f["kind"] for f in _scan(cli, tmp_path, text)] == ["lookalike"]
    watch_id = str(watch.jsonl()[-1]["id"])
    assert cli("watch", "remove", "--tenant", "acme-bank", watch_id).code == 0
    assert _scan(cli, tmp_path, text) == []


def test_stored_lookalike_alert_keeps_the_technique(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """``scan --store`` raises the alert; its findings (API, webhook event) still say how the domain was twisted."""
    from alerting.events import build_event
    from core.alert_view import alert_to_dict
    from core.db import open_database
    from core.models import Alert
    from core.settings import load_settings

    assert cli("tenant", "add", "acme-bank", "--domain", "acme-bank.com").code == 0
    posting = tmp_path / "kit.txt"
    posting.write_text("harvest\njane@acme-bnak.com:qwerty\n", encoding="utf-8")
    assert cli("scan", str(posting), "--store", "--json").code == 0
    with open_database(load_settings()).session() as sess:
        alert = sess.query(Alert).one()
        view = alert_to_dict(sess, alert, with_findings=True)
    assert [(f["kind"], f["watch"], f.get("technique")) for f in view["findings"]] == [
        ("lookalike", "acme-bnak.com", "transposition")
    ]
    event = build_event(view, event_id="e1")
    assert event["alert"]["findings"][0]["technique"] == "transposition"
