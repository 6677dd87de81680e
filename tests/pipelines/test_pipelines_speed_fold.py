"""`fold` gives exactly what folding the whole text at once gives (`fold_reference`), on both of its paths:
each round in C (core.search._tokens.fold), and the Python path (pieces cut on line ends, NFKC through a
per-character table) used when the extension is not built.

Why: the keyword and document watches fold every posting; the fast paths must not change one character
of the folded text. The texts mix ASCII, Chinese, full-width forms, characters whose folding changes the
length (ß, ﬁ, İ), combining marks that compose across a table-mapped character, Hangul jamo, final
sigma, astral characters, lone surrogates and lines longer than a piece.
"""

from __future__ import annotations

import os
import random
import sys
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import canonical
from core.canonical import fold, fold_reference

_PIECES = [
    "plain ascii words, emails a@b.com ",
    "ASCII UPPER ",
    "姓名：张伟，电话：１３８００１３８０００ ",
    "ＡＣＭＥ　Ｃｏｒｐ ",
    "straße ẞ ﬁle İstanbul ΣΊΣΥΦΟΣ ",
    "e\u0301 a\u0308 \u0301 ﾊﾟﾋﾞ ｶﾞ ",  # combining marks, half-width katakana with voiced marks
    "\u1100\u1161\u11a8 \u3131\u314f ",  # conjoining and compatibility jamo
    "𝐀𝐁𝐂 𝔘𝔫𝔦 \U0001f600 ",  # astral: mathematical letters, an emoji
    "\ufb01\u2126\u212b\u2460\u00bd\u2075 ",
    "\ud800 \udfff ",  # lone surrogates
    "\n",
    "\n\n",
    "\r\n",
]


@pytest.fixture(autouse=True, params=["native", "python"])
def fold_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs on both paths of `fold`."""
    if request.param == "python":
        saved = canonical._native_round
        canonical._native_round = None
        try:
            yield request.param
        finally:
            canonical._native_round = saved
        return
    if canonical._native_round is None:
        if os.environ.get("LEAKSENTINEL_TEST_REQUIRE_NATIVE") == "1":
            pytest.fail("core.search._tokens is not built: fold runs on its Python path")
        pytest.skip("core.search._tokens not built")
    yield request.param


def test_fold_uses_the_extension_when_built(fold_path: str) -> None:
    """A fold that silently fell back to Python would pass every equality test below."""
    if fold_path == "native":
        from core.search import _tokens

        assert canonical._native_round is _tokens.fold_checked


def _text(rng: random.Random, pieces: int) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(pieces))


def test_casefold_is_idempotent_on_every_code_point() -> None:
    """What lets `fold` drop the reference's second casefold of the folded text."""
    for code in range(sys.maxunicode + 1):
        once = chr(code).casefold()
        assert once.casefold() == once, hex(code)


def test_no_code_point_folds_to_or_from_a_line_end() -> None:
    """What lets `fold` cut a text on its line ends (and the keyword stage read the folded lines)."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert (fold_reference(char).count("\n") == 1) == (char == "\n"), hex(code)
        assert (unicodedata.normalize("NFKC", char).count("\n") == 1) == (char == "\n"), hex(code)


def test_the_nfkc_table_maps_each_character_to_its_nfkc() -> None:
    table = canonical._nfkc_table()
    for code in range(0x10000):
        if table[code] != code:
            assert unicodedata.normalize("NFKC", chr(code)) == chr(int(table[code])), hex(code)


@pytest.mark.parametrize("seed", range(40))
def test_fold_of_long_mixed_texts_is_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    text = _text(rng, rng.choice([50, 400, 3000]))
    if seed % 4 == 0:  # mostly ASCII with a few non-ASCII lines (the common dump)
        lines = [f"user{i}@example.com:Password{i}" for i in range(3000)]
        for _ in range(rng.randrange(1, 6)):
            lines[rng.randrange(len(lines))] += rng.choice(_PIECES)
        text = "\n".join(lines)
    if seed % 5 == 0:  # one very long line
        text = text.replace("\n", " ")
    assert fold(text) == fold_reference(text)


@pytest.mark.parametrize("piece", _PIECES)
def test_fold_of_one_repeated_piece_is_the_reference(piece: str) -> None:
    for times in (1, 700, 3000):
        text = piece * times
        assert fold(text) == fold_reference(text)


def test_fold_with_small_pieces_and_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many pieces and the table for short pieces: every cut and every table use on one text."""
    monkeypatch.setattr(canonical, "_FOLD_PIECE", 16)
    monkeypatch.setattr(canonical, "_TABLE_MIN", 4)
    rng = random.Random(7)
    for _ in range(200):
        text = _text(rng, rng.randrange(1, 40))
        assert fold(text) == fold_reference(text)


_CHARS = st.one_of(
    st.characters(),
    st.sampled_from(list("\n \u0301\u0308\u3099\u309a\uff9e\uff9f\u1161\u11a8Σσςß\uff21\u3000ﾊｶ")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(_CHARS, max_size=12), max_size=60))
def test_fold_of_any_text_is_the_reference(pieces: list[str]) -> None:
    text = "".join(pieces)
    saved = canonical._FOLD_PIECE, canonical._TABLE_MIN
    try:
        canonical._FOLD_PIECE, canonical._TABLE_MIN = 8, 2
        assert fold(text) == fold_reference(text)
    finally:
        canonical._FOLD_PIECE, canonical._TABLE_MIN = saved
    assert fold(text * 50) == fold_reference(text * 50)


def _needs_rounds(code: int) -> bool:
    once = unicodedata.normalize("NFKC", chr(code)).casefold()
    return not unicodedata.is_normalized("NFKC", once)


#: Characters whose first round (NFKC, then casefold) is not yet in NFKC (ǰ, ΐ, ẖ, ᾶ...): a fold that
#: stopped after one round would differ on them alone.
_TWO_ROUNDS = [chr(code) for code in range(sys.maxunicode + 1) if _needs_rounds(code)]


def test_characters_that_need_a_second_round_fold_to_the_reference() -> None:
    assert len(_TWO_ROUNDS) >= 20  # Unicode 14: 26 of them
    for char in _TWO_ROUNDS:
        for text in (char, f"x{char}y", f"\u0301{char}\u0308", f"张伟 {char * 3}\n" * 400):
            assert fold(text) == fold_reference(text), hex(ord(char))


@pytest.mark.parametrize(
    "context", ["a", "é", "中", "\U00020000", "\u0301"], ids=["ascii", "latin1", "ucs2", "ucs4", "mark"]
)
def test_fold_checked_is_one_round_and_its_stable_claim_holds_for_every_code_point(
    fold_path: str, context: str
) -> None:
    """fold_checked's fold is the round's, whatever the text's kind, and when it says stable the fold is
    its own NFKC: a wrong claim would let `fold` return a text that is not yet folded."""
    if fold_path != "native":
        pytest.skip("the extension's function")
    from core.search import _tokens

    wrong, claims = [], 0
    for code in range(sys.maxunicode + 1):
        text = f"X{chr(code)}{context}"
        folded, stable = _tokens.fold_checked(text)
        if folded != _tokens.fold(text):
            wrong.append(("fold", hex(code)))
        if stable:
            claims += 1
            if not unicodedata.is_normalized("NFKC", folded):
                wrong.append(("stable", hex(code)))
    assert wrong == []
    assert claims > 100_000 or context == "\u0301"  # the claim is made for most characters


def test_fold_checked_on_chinese_text_is_stable_and_narrow(fold_path: str) -> None:
    if fold_path != "native":
        pytest.skip("the extension's function")
    from core.search import _tokens

    folded, stable = _tokens.fold_checked("姓名：张伟，ＡＣＭＥ Corp 电话：１３８")
    assert stable and folded == "姓名:张伟,acme corp 电话:138"
    assert _tokens.fold_checked("ÀB") == ("àb", True)  # a 1-byte text stays one
    assert _tokens.fold_checked("e\u0301")[1] is False  # folded by unicodedata: not known
    assert _tokens.fold_checked("") == ("", True)
    with pytest.raises(TypeError):
        _tokens.fold_checked(b"x")
