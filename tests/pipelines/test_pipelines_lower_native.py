"""The native ``lower`` (pipelines.detection.lines.lower_text) is ``str.lower`` for every str.

Why: the watched domains, look-alikes and secret owners read the lowered posting; a character lowered
differently would hide a watched domain, or shift every offset after it.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection import lines
from pipelines.detection.lines import lower_text

_native = pytest.importorskip("pipelines.detection._fingerprint")
lower = _native.lower

#: One character of each str kind, so every code point is read in a 1-, 2- and 4-byte text.
CONTEXTS = ("é", "中", "\U00020000")


@pytest.mark.parametrize("context", CONTEXTS, ids=["latin1", "ucs2", "ucs4"])
def test_every_code_point_lowers_as_str_lower(context: str) -> None:
    bad = []
    for code in range(sys.maxunicode + 1):
        text = f"A{chr(code)}{context}z"
        if lower(text) != text.lower():
            bad.append(hex(code))
    assert bad == []


def test_results_take_the_smallest_kind() -> None:
    # U+212A KELVIN SIGN lowers to ASCII "k": the result must be an ASCII str, as str.lower's is
    for text in ("\u212a", "\u212aAB", "\u212a\u00c9", "\U00010400"):
        got = lower(text)
        assert got == text.lower()
        assert got.isascii() == text.lower().isascii()
        assert len(got) == len(text.lower())
        assert max(got) == max(text.lower())


def test_context_and_multi_character_lower_cases_are_str_lower_s() -> None:
    for text in ("ΣΑΣ ΟΔΟΣ Σ", "İstanbul 中", "AΣ.", "Σ", "x\u0130y\U00020000", "ΑΣ\u0301 中"):
        assert lower(text) == text.lower()


def test_ascii_and_empty_texts() -> None:
    assert lower("") == ""
    assert lower("ABC def") == "abc def"
    assert lower_text("Acme-Bank.EXAMPLE 中文") == "acme-bank.example 中文"


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="takes a str"):
        lower(b"ABC")
    with pytest.raises(TypeError):
        lower(None)


def test_lower_text_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lines.NATIVE_SWITCH, "0")
    assert lower_text("ÀB中") == "àb中"
    monkeypatch.setattr(lines, "native_text", None)
    monkeypatch.delenv(lines.NATIVE_SWITCH)
    assert lower_text("ÀB中") == "àb中"


@settings(max_examples=2000, deadline=None)
@given(text=st.text(max_size=200))
def test_generated_texts(text: str) -> None:
    assert lower(text) == text.lower()
    assert lower_text(text) == text.lower()


@pytest.mark.parametrize(
    "block",
    ["中文中文中文中{}", "{}ABCDEFG", "AbC中{}文Z中", "{}{}{}{}{}{}{}{}"],
    ids=["after-cjk", "before-ascii", "mixed", "alone"],
)
def test_every_code_point_in_a_block_of_eight(block: str) -> None:
    """2-byte texts are lowered 8 characters at a time where a block is all ASCII or CJK ideographs:
    each code point in such a block, at each place, lowers as str.lower."""
    bad = []
    for code in range(0x10000):
        text = block.format(*[chr(code)] * block.count("{}")) * 3 + "\u4e00A"
        if lower(text) != text.lower():
            bad.append(hex(code))
    assert bad == []


def test_blocks_of_ascii_and_ideographs_lower_the_ascii_letters() -> None:
    text = "ABCDEFGH中文中文中文中文ZYXWVUTSabc@ACME中" * 50
    assert lower(text) == text.lower()
    edge = "@[`{AZaz" + "\u33ff\u3400\u9fff\ua000" + "\u3400" * 4  # the ranges' edges in one block each
    assert lower(edge * 4) == (edge * 4).lower()
