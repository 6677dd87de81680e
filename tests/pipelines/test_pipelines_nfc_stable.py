"""A text the native check calls NFC-stable is its own NFC, for every code point it accepts.

Why: `normalize_text` skips unicodedata's NFC pass for such texts; one accepted character that NFC
changes, or that composes with the character before it, would leave a posting un-normalised, and its
watches and hashes would then miss what the same text in NFC matches."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection.lines import native_text
from pipelines.normalize import normalize_text, normalize_text_py

pytestmark = pytest.mark.skipif(native_text is None, reason="native text helpers not built")


def _composes_second() -> set[int]:
    """Code points that are the second of a canonical pair (NFC may join them to the one before)."""
    out = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    for c in range(0x110000):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<") and len(d.split()) == 2:
            out.add(int(d.split()[1], 16))
    return out


def test_every_accepted_code_point_is_one_nfc_keeps_and_never_joins() -> None:
    second = _composes_second()
    accepted = [c for c in range(0x10000) if native_text.nfc_stable("中" + chr(c))]
    assert len(accepted) > 40_000  # the ranges are not empty: ASCII, Latin, CJK, kana, Hangul, forms
    for c in accepted:
        ch = chr(c)
        assert unicodedata.combining(ch) == 0, hex(c)
        assert unicodedata.is_normalized("NFC", ch), hex(c)
        assert c not in second, hex(c)
    # and every pair of accepted characters is its own NFC (spot check of the neighbours of each range)
    accepted_set = set(accepted)
    edges = [c for c in accepted if c - 1 not in accepted_set or c + 1 not in accepted_set]
    for a in edges:
        for b in edges:
            assert unicodedata.is_normalized("NFC", chr(a) + chr(b)), (hex(a), hex(b))


@pytest.mark.parametrize(
    "text",
    [
        "e\u0301",
        "\u1100\u1161",
        "가\u11a8",
        "か\u3099",
        "\U0001f600",
        "\uf900",
        "A\u030a",
        "\u212b",
        "\u0344",
        "ab\u0300",
    ],
)
def test_texts_nfc_changes_are_not_called_stable(text: str) -> None:
    assert not native_text.nfc_stable("中文" * 5 + text + "中" * 9)


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=60), st.integers(0, 20))
def test_normalize_text_equals_the_reference(text: str, pad: int) -> None:
    padded = "中" * pad + text  # a 2-byte text, whatever the drawn characters: the vector blocks
    assert normalize_text(padded, 10_000) == normalize_text_py(padded, 10_000)
    assert normalize_text(text, 10_000) == normalize_text_py(text, 10_000)
