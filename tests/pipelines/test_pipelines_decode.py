"""Byte-order marks and UTF-16/32 without one: the same leak is found whatever a dump's encoding."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.decode import decode_bytes, sniff_encoding
from pipelines.normalize import NormalizePipeline

LEAK = "dump of the week\nname,mail\n张伟,JANE.DOE@ACME.EXAMPLE:hunter2\nthe end\n"

ENCODINGS: dict[str, bytes] = {
    "utf-8": LEAK.encode("utf-8"),
    "utf-8-bom": codecs.BOM_UTF8 + LEAK.encode("utf-8"),
    "utf-16-le-bom": codecs.BOM_UTF16_LE + LEAK.encode("utf-16-le"),
    "utf-16-be-bom": codecs.BOM_UTF16_BE + LEAK.encode("utf-16-be"),
    "utf-16-le": LEAK.encode("utf-16-le"),
    "utf-16-be": LEAK.encode("utf-16-be"),
    "utf-32-le-bom": codecs.BOM_UTF32_LE + LEAK.encode("utf-32-le"),
    "utf-32-be-bom": codecs.BOM_UTF32_BE + LEAK.encode("utf-32-be"),
    "utf-32-le": LEAK.encode("utf-32-le"),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_decode_bytes_recovers_the_text(name: str) -> None:
    assert decode_bytes(ENCODINGS[name]) == LEAK


@pytest.mark.parametrize("name", sorted(set(ENCODINGS) - {"utf-8"}))
def test_sniffing_beats_a_wrong_declared_charset(name: str) -> None:
    """Scrapy declares utf-8 or cp1252 for a text/plain body; NUL-laden UTF-16 must not be read so."""
    assert decode_bytes(ENCODINGS[name], declared="utf-8") == LEAK
    assert decode_bytes(ENCODINGS[name], declared="cp1252") == LEAK


def test_eight_bit_text_is_not_taken_for_utf16() -> None:
    gbk = "内部员工信息泄露 姓名：张伟 电话 13800138000".encode("gbk")
    assert sniff_encoding(gbk) is None
    assert decode_bytes(gbk, declared="gbk") == "内部员工信息泄露 姓名：张伟 电话 13800138000"
    assert sniff_encoding("café crème brûlée".encode("latin-1")) is None
    assert sniff_encoding(LEAK.encode("utf-8")) is None


def test_a_body_cut_mid_unit_still_decodes() -> None:
    """The size limit cuts bytes, not characters: an odd UTF-16 length or a cut surrogate pair."""
    raw = codecs.BOM_UTF16_LE + ("mail a@acme.example 😀").encode("utf-16-le")
    assert decode_bytes(raw[:-1]).startswith("mail a@acme.example")
    assert decode_bytes(raw[:-3]).startswith("mail a@acme.example")
    assert decode_bytes(LEAK.encode("utf-16-le")[:-1]) == LEAK[:-1]


def test_normalize_pipeline_gives_the_same_text_for_every_encoding() -> None:
    from core.posting import PostingDraft

    class _Settings:
        max_posting_bytes = 1_000_000

    stage = NormalizePipeline(_Settings())  # type: ignore[arg-type]
    texts = {stage.apply(PostingDraft(source="t", url=n, raw=raw)).text for n, raw in ENCODINGS.items()}
    assert texts == {LEAK}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([None, "utf-8", "utf-16", "gbk", "no-such-codec"]))
def test_any_bytes_decode_without_error(raw: bytes, declared: str | None) -> None:
    assert isinstance(decode_bytes(raw, declared), str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=4, max_size=300))
def test_ascii_text_in_utf16_without_bom_is_recognised(text: str) -> None:
    assert decode_bytes(text.encode("utf-16-le")) == text
    assert decode_bytes(text.encode("utf-16-be")) == text


def _register(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme", "--domain", "acme.example", "--json").code == 0
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text("id,email\nc-1,jane.doe@acme.example\nc-2,bob@other.example\n", encoding="utf-8")
    hashed = cli("hash", "--csv", str(csv_path), "--key-column", "id")
    assert hashed.code == 0, hashed.err
    records = tmp_path / "customers.jsonl"
    records.write_text(hashed.out, encoding="utf-8")
    assert cli("watch", "add", "--tenant", "acme", "--records", str(records)).code == 0
    assert cli("watch", "add", "--tenant", "acme", "--keyword", "dump of the week").code == 0


def test_scan_finds_the_same_leak_in_every_encoding(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    _register(cli, tmp_path)
    found: dict[str, list[dict[str, object]]] = {}
    for name, raw in ENCODINGS.items():
        path = tmp_path / f"{name}.txt"
        path.write_bytes(raw)
        result = cli("scan", str(path), "--json")
        assert result.code == 0, result.err
        found[name] = sorted(
            ({k: v for k, v in f.items() if k != "posting"} for f in result.jsonl()), key=repr
        )
    reference = found["utf-8"]
    kinds = {(f["kind"], f.get("record_key"), f["line"]) for f in reference}
    assert kinds == {("record", "c-1", 3), ("domain", None, 3), ("keyword", None, 1)}
    for name, findings in found.items():
        assert findings == reference, name
