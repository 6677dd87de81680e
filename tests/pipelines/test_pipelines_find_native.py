"""The native substring search answers what ``str.find`` answers, in every lane of its blocks.

Why: each watched domain and keyword is looked for in every posting by `lines.find_text`; a needle
missed in one lane, or a match reported one character off, is a watch that stays silent or points the
analyst at the wrong line."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection import lines
from pipelines.detection.lines import find_text, native_text

pytestmark = pytest.mark.skipif(native_text is None, reason="native text helpers not built")

ALPHABETS = {
    "ascii": "ab.-@ ",
    "latin1": "abé.ü ",
    "ucs2": "ab中文.@ ",
    "ucs4": "ab\U0001f600中. ",
}


def _same(text: str, needle: str, start: int = 0) -> None:
    assert native_text.find(text, needle, start) == text.find(needle, start), (text[:60], needle, start)


@pytest.mark.parametrize("kind", sorted(ALPHABETS))
def test_a_needle_at_every_offset_of_the_blocks(kind: str) -> None:
    filler = ALPHABETS[kind][0] * 70
    for needle in ("ab", "a.b", "中文", "acme.example", "é-ü", "b" * 17):
        for at in range(0, 40):
            text = filler[:at] + needle + filler[at:]
            _same(text, needle)
            _same(text, needle, at)
            _same(text, needle, at + 1)  # past it: the next one, or none
            _same(text[: at + len(needle) - 1], needle)  # cut one short: absent


@settings(max_examples=500, deadline=None)
@given(
    kind=st.sampled_from(sorted(ALPHABETS)),
    data=st.data(),
)
def test_random_texts_and_needles(kind: str, data: st.DataObject) -> None:
    alphabet = ALPHABETS[kind]
    text = data.draw(st.text(alphabet, max_size=200))
    needle = data.draw(st.text(alphabet + "x中", min_size=0, max_size=8))
    start = data.draw(st.integers(-5, len(text) + 3))
    _same(text, needle, start)


def test_needles_the_text_cannot_hold_and_one_character_needles() -> None:
    ascii_text = "acme example " * 100
    _same(ascii_text, "é")
    _same(ascii_text, "中文")
    _same(ascii_text, "e")
    _same(ascii_text, "")
    _same("é" * 50 + "中", "中")


def test_a_hostile_text_ends_in_cpython_search_with_the_same_answer() -> None:
    """Every block holds candidates whose first and last characters match: the budget of failed
    candidates hands the search to CPython's linear one, which answers the same."""
    for unit, odd in (("a", "b"), ("中", "文")):
        needle = unit * 15 + odd + unit * 15  # its first and last characters are the text's
        # the budget (about a sixteenth of the text, and a thousand) runs out near 1,100 here: the match
        # stands just past where the native search stopped, then far past it
        for size in (*range(1_080, 1_200, 3), 5_000, 200_000):
            text = unit * size + needle + unit * 40
            _same(text, needle)
            _same(text, needle, size // 2)
            _same(text.replace(odd, unit), needle)  # absent


def test_find_text_uses_the_native_search_on_long_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    class Spy:
        def find(self, text: str, needle: str, start: int = 0) -> int:
            calls.append(len(text) - start)
            return int(native_text.find(text, needle, start))

        def __getattr__(self, name: str) -> object:
            return getattr(native_text, name)

    monkeypatch.setattr(lines, "native_text", Spy())
    rng = random.Random(2)
    text = "".join(rng.choice("abc中 \n") for _ in range(20_000)) + "acme.example"
    assert find_text(text, "acme.example") == text.find("acme.example")
    assert find_text(text[:100], "acme") == text[:100].find("acme")  # short: str.find
    assert calls == [len(text)]
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    assert find_text(text, "acme.example") == text.find("acme.example")
    assert calls == [len(text)]
