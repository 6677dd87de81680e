"""A posting's UTF-8 size is computed without encoding it, and the scanner bounds and cleans it as
before.

Why: the scanner reads at most ``max_bytes`` of UTF-8 and replaces lone surrogates (bytes decoded with
surrogateescape) first; a wrong size would cut a posting short or let a surrogate reach the C scanner."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection import extract as ex
from pipelines.detection.fastscan import HashedScanner, native_available
from pipelines.detection.lines import native_text, utf8_size

pytestmark = pytest.mark.skipif(native_text is None, reason="native text helpers not built")


def _reference(text: str) -> int | None:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=300))
def test_the_size_is_the_encoded_size_and_surrogates_are_none(text: str) -> None:
    assert utf8_size(text) == _reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "é" * 33,
        "\x7f\x80\u07ff\u0800\uffff",
        "\U00010000\U0010ffff",
        "中文" * 100 + "\ud800",
        "a" * 40 + "\udfff" + "b" * 40,
        "\U0001f600" * 20 + "\udc80",
    ],
)
def test_every_boundary_of_the_encoding(text: str) -> None:
    assert utf8_size(text) == _reference(text)


@pytest.mark.skipif(not native_available(), reason="native scanner not built")
@pytest.mark.parametrize("max_bytes", [10, 20, 21, 31, 32, 33, 39, 40, 1000])
def test_the_scanner_bounds_and_cleans_as_extract_does(max_bytes: int) -> None:
    key = bytes(range(32))
    texts = (
        "13800138000 中文 a@b.example\n" * 3,
        "13800138000 \udc80 a@b.example\n",
        "é" * 20,
        "中中中 13800138000",
    )
    for text in texts:  # the last is 21 bytes: at 20, its mobile loses a digit
        scanner = HashedScanner(key, ("CN",))
        bounded = ex._bounded(text, max_bytes)
        got, want = scanner.scan(text, max_bytes=max_bytes), scanner.scan(bounded, max_bytes=10**6)
        assert got.digests == want.digests and got.pairs.tolist() == want.pairs.tolist()
