"""`_needle_chars` in one C call (translate, then ``str.isalnum``) answers what the per-character test
(`_is_host_char` or a dot) answered, for every code point and for mixed needles."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection.lookalikes import _is_host_char, _needle_chars


def _reference(needle: str) -> bool:
    return all(c == "." or _is_host_char(c) for c in needle)


def test_every_code_point() -> None:
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert _needle_chars(char) == _reference(char), hex(code)
        assert _needle_chars(f"a.{char}-b") == _reference(f"a.{char}-b"), hex(code)


@settings(max_examples=500, deadline=None)
@given(st.text(st.one_of(st.sampled_from(list("ab.-_1 é²ⅫＡ@/")), st.characters()), max_size=12))
def test_mixed_needles(needle: str) -> None:
    assert _needle_chars(needle) == _reference(needle)
