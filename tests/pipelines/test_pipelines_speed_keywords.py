"""A few keywords found by `str.find` (`KeywordMatcher._find_few`) give the hits, lines, excerpts and
order the Aho-Corasick automaton gives.

Why: with up to `FEW_KEYWORDS` keywords the matcher no longer walks the automaton's hits; keywords that
end at one offset (``cab`` / ``ab``), overlap, repeat, hold a line end, touch a letter (word boundaries)
or fold to another length must come out exactly as before, in the same order.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import fold
from pipelines.detection import keywords as kw
from pipelines.detection.keywords import KeywordMatcher
from pipelines.detection.lines import Deadline

KEYWORDS = [
    (1, 1, "cab"),
    (1, 2, "ab"),
    (2, 3, "AB"),  # the same folded keyword as watch 2, another tenant
    (2, 4, "abx"),
    (3, 5, "a b"),
    (3, 6, "数据泄露"),
    (1, 7, "straße"),
    (2, 8, "ｉｎｉｔｅｃｈ"),
]
PIECES = st.one_of(
    st.sampled_from(["cab", "ab", "AB", "abx", "xab", "a b", "a\nb", "CABX", "数据泄露", "数据", "泄露"]),
    st.sampled_from(["STRASSE", "straße", "ﬁ", "İ", "initech", "ＩＮＩＴＥＣＨ", "\n", " ", ".", "1", "é"]),
    st.text(alphabet="abcx \n", max_size=6),
)


def _matchers(
    monkeypatch: pytest.MonkeyPatch, keywords: list[tuple[int, int, str]]
) -> tuple[KeywordMatcher, ...]:
    few = KeywordMatcher(keywords)
    monkeypatch.setattr(kw, "FEW_KEYWORDS", 0)
    automaton = KeywordMatcher(keywords)
    monkeypatch.undo()
    assert few._few is not None and automaton._few is None
    return few, automaton


def _same(few: KeywordMatcher, automaton: KeywordMatcher, text: str) -> None:
    folded = fold(text)
    assert few.find(text) == automaton.find(text)
    assert few.find(text, Deadline.after(10), folded=folded) == automaton.find(text, folded=folded)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(PIECES, max_size=50))
def test_few_keywords_find_what_the_automaton_finds(
    monkeypatch: pytest.MonkeyPatch, pieces: list[str]
) -> None:
    few, automaton = _matchers(monkeypatch, KEYWORDS)
    _same(few, automaton, "".join(pieces))


@pytest.mark.parametrize("seed", range(10))
def test_few_keywords_across_blocks(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    few, automaton = _matchers(monkeypatch, KEYWORDS)
    monkeypatch.setattr(kw, "BLOCK_CHARS", 64)  # many blocks: a keyword found in one is skipped after
    rng = random.Random(seed)
    words = ["cab", "ab", "xab", "abx", "a b", "数据泄露", "STRASSE", "ｉｎｉｔｅｃｈ", "noise", "\n", "\n\n"]
    text = " ".join(rng.choice(words) for _ in range(600))
    _same(few, automaton, text)


def test_keywords_ending_at_one_offset_keep_the_automatons_order(monkeypatch: pytest.MonkeyPatch) -> None:
    few, automaton = _matchers(monkeypatch, [(1, 1, "b"), (1, 2, "ab"), (1, 3, "cab")])
    hits = few.find("x cab\nab b")
    assert [(h.keyword, h.line) for h in hits] == [("cab", 1), ("ab", 2), ("b", 2)]
    assert hits == automaton.find("x cab\nab b")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=40))
def test_a_text_folded_by_the_caller_is_read_without_counting_its_lines(pieces: list[str]) -> None:
    """`folded_here`: the line ends are not counted; fold keeps them all, so the hits are the same."""
    text = "".join(pieces)
    folded = fold(text[: kw.MAX_TEXT_CHARS])
    assert folded.count("\n") == text.count("\n")
    matcher = KeywordMatcher(KEYWORDS)
    assert matcher.find(text, folded=folded, folded_here=True) == matcher.find(text)
