"""The native line-end and control-character pass of ``normalize_text`` equals the Python reference.

Why differential: every later stage (fingerprints, candidates, line numbers) reads the normalised text;
one character more or less, or a line end moved, would shift every finding's line. Each text is
normalised both ways, on line ends of every kind (CRLF, lone CR, CR CR LF), every control character,
characters of every width (Latin-1, CJK, astral), and lone surrogates.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import normalize
from pipelines.normalize import normalize_text, normalize_text_py

native = pytest.mark.skipif(normalize._native is None, reason="native extension not built")

PIECES = st.one_of(
    st.sampled_from(
        ["\r\n", "\r", "\n", "\r\r\n", "\n\r", "\t", "\x0b", "\x0c", "\x7f", "\x00", "\x1f", "\x85"]
    ),
    st.sampled_from(["é", "e\u0301", "数据", "𝐀", "\ud800", "ÿ", "\u2028", "ａ", "Å"]),
    st.text(alphabet=st.characters(max_codepoint=0x80), max_size=5),
    st.text(max_size=5),
)


@native
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=30), st.integers(min_value=0, max_value=60))
def test_native_normalisation_equals_the_reference(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    for max_chars in (limit, 1_000_000):
        assert normalize_text(text, max_chars) == normalize_text_py(text, max_chars)


@native
def test_clean_text_keeps_the_string_when_nothing_changes_and_its_width_otherwise() -> None:
    plain = "a line\nanother 数据 line\t\n"
    assert normalize._native.clean_text(plain) is plain
    assert normalize._native.clean_text("a\r\nb\rc\x00d") == "a\nb\nc d"
    # the result is a canonical str: equal to (and hashed like) the same text built in Python
    for text in ("\x7f\r\n", "ÿ\x01\r\n", "数\x02\r", "𝐀\x03"):
        out = normalize._native.clean_text(text)
        assert out == normalize_text_py(text, 100) and hash(out) == hash(normalize_text_py(text, 100))
        assert out.isascii() == normalize_text_py(text, 100).isascii()


def test_switched_off_by_the_scanner_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    monkeypatch.setattr(normalize, "_native", None if normalize._native is None else object())
    assert normalize_text("a\r\nb\x00", 100) == "a\nb "
