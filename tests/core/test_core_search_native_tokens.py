"""`core.search._tokens` (core/search/_native/tokens.c) must give exactly what cjk.py's Python path gives.

`token_string` and `tokenize` run in C when the extension is built; `token_string_py` / `tokenize_py`
are the Python path and the reference. The C side folds (NFKC + casefold) piece by piece, a piece being a
"boundary" character and the non-boundary characters after it (combining marks, vowel jamo, ...), with a
per-code-point table of folds; these tests check its tables against unicodedata and `re` over every code
point, whole-text folds of every code point in many orders and contexts, generated text (hypothesis)
and the benchmark corpus (bench/detect.py).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.search import cjk
from core.search.cjk import CJK_RANGES, MAX_TOKEN_CHARS, token_string, token_string_py, tokenize, tokenize_py

ROOT = Path(__file__).resolve().parents[2]
BUILT = sorted((ROOT / "core" / "search").glob("_tokens*.so"))
native: Any = cjk._native
needs_native = pytest.mark.skipif(native is None, reason="core.search._tokens not built")
ALL = range(0x110000)
#: Under ``make sanitize`` (ASan makes the Python reference's large folds ~100x slower) the tests that fold
#: one text of every code point take every 13th instead: the native code runs the same paths.
SANITIZED = bool(os.environ.get("LEAKSENTINEL_SANITIZE"))
IN_CONTEXT = range(0, 0x110000, 13) if SANITIZED else ALL


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _same(text: str) -> None:
    expected = token_string_py(text)
    got = token_string(text)
    assert got == expected, text
    assert got.isascii() == expected.isascii()  # same kind, not only equal code points
    assert tokenize(text) == tokenize_py(text) == expected.split(), text
    assert native.fold(text) == _fold(text), text


# --------------------------------------------------------------------------- the native path is the one used


def test_the_native_path_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    if not BUILT and os.environ.get("LEAKSENTINEL_TEST_REQUIRE_NATIVE") != "1":
        pytest.skip("core.search._tokens not built (LEAKSENTINEL_TEST_REQUIRE_NATIVE=1 requires it)")
    assert native is not None, f"core.search._tokens does not import ({BUILT})"
    assert native.MAX_TOKEN_CHARS == MAX_TOKEN_CHARS

    def boom(text: str) -> str:
        raise AssertionError("Python path used")

    monkeypatch.setattr(cjk, "token_string_py", boom)
    monkeypatch.setattr(cjk, "tokenize_py", boom)
    assert token_string("ACME 客户数据库 ＡＢＣ") == "acme 客户 户数 数据 据库 abc"
    assert tokenize("acme客户") == ["acme", "客户"]
    assert token_string("plain ascii_text") == "plain ascii text"


def test_without_the_module_the_python_path_is_used() -> None:
    code = (
        "import sys; sys.modules['core.search._tokens'] = None\n"
        "from core.search import cjk\n"
        "assert cjk._native is None\n"
        "print(cjk.token_string('ACME 客户数据库'), cjk.tokenize('ß①'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "acme 客户 户数 数据 据库 ['ss1']"


# --------------------------------------------------------------------------- tables over every code point


@needs_native
def test_character_classes_of_every_code_point() -> None:
    text = "".join(map(chr, ALL))
    expected = bytearray(len(text))
    for m in re.finditer(r"[^\W_]", text):  # a word character of Python's re (str pattern)
        expected[m.start()] = 1
    for m in re.finditer(rf"[{CJK_RANGES}]", text):
        expected[m.start()] = 2
    got = native.classes(text)
    bad = [hex(i) for i in ALL if got[i] != expected[i]]
    assert not bad, bad[:20]
    assert expected.count(2) > 100_000 and expected.count(1) > 25_000


@needs_native
def test_composition_second_characters_are_those_of_unicodedata() -> None:
    assert unicodedata.unidata_version == native.UNIDATA_VERSION
    seconds = set()
    for c in ALL:
        mapping = unicodedata.decomposition(chr(c))
        if mapping and not mapping.startswith("<") and len(mapping.split()) == 2:
            seconds.add(int(mapping.split()[1], 16))
    # Hangul composes algorithmically: L + V, LV + T (not in the decomposition data)
    seconds |= set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    assert set(native.composition_seconds()) == seconds


@needs_native
def test_fold_table_of_every_code_point() -> None:
    seconds = set(native.composition_seconds())
    bad = []
    for c in ALL:
        ch = chr(c)
        starter = unicodedata.combining(ch) == 0 and c not in seconds
        if starter:
            first = unicodedata.normalize("NFKD", ch)[0]
            starter = unicodedata.combining(first) == 0 and ord(first) not in seconds
        expected = (True, _fold(ch)) if starter else (False, None)
        if native.char_info(c) != expected:
            bad.append(hex(c))
    assert not bad, bad[:20]


@needs_native
def test_every_code_point_alone() -> None:
    bad = [hex(c) for c in ALL if token_string(chr(c)) != token_string_py(chr(c))]
    assert not bad, bad[:20]
    bad = [hex(c) for c in ALL if native.fold(chr(c)) != _fold(chr(c))]
    assert not bad, bad[:20]


_STARTERS = [
    "e",  # + U+0301
    "\u1100",  # Hangul L: + V
    "\uac00",  # Hangul LV: + T
    "\u0b47",  # Oriya: + U+0B3E, U+0B56, U+0B57
    "\u09c7",  # Bengali: + U+09BE, U+09D7
    "\u0d46",  # Malayalam: + U+0D3E, U+0D57
    "\u1025",  # Myanmar: + U+102E
    "\u304b",  # ka: + dakuten U+3099
    "\u0391",  # Greek: several marks
    "\u0627",  # Arabic alef: + U+0653..0655
]


@needs_native
@pytest.mark.parametrize("seed", range(3))
def test_every_code_point_in_context(seed: int) -> None:
    """The whole text of every code point, shuffled, with composition starters before each: one fold."""
    rng = random.Random(seed)
    cps = list(IN_CONTEXT)
    rng.shuffle(cps)
    if seed == 0:
        cps.sort()
    text = "".join(rng.choice(_STARTERS) * (seed % 2) + chr(c) for c in cps)
    assert native.fold(text) == _fold(text)
    assert token_string(text) == token_string_py(text)


@needs_native
def test_combining_marks_after_every_boundary_character() -> None:
    marks = ["\u0301", "\u0323\u0301", "\u3099", "\u1161\u11a8", "\u11a8", "\u0b3e", "\u0345", "\u0f72"]
    rng = random.Random(9)
    text = "".join(chr(c) + rng.choice(marks) for c in IN_CONTEXT)
    assert native.fold(text) == _fold(text)
    assert token_string(text) == token_string_py(text)


# --------------------------------------------------------------------------- generated text

_ALPHABET = st.sampled_from(
    [
        *"abcXYZ09_ -.,;:/@\n\t'\"",
        *"客户数据库泄露的",
        *"ｱｲあいアイ",
        *"한국어가",
        *"ＡＣＭＥ１２",
        *"٣۴߂१০௫",  # Unicode digits
        *"\u0301\u0323\u0308\u3099\u309a\u0345",  # combining marks
        *"\u1100\u1161\u11a8\u314f\u3131",  # conjoining and compatibility jamo
        *"İıßﬁﬀΣσςǅẞ",
        *"\U00020000\U0002a6d6\U0003134a\U00031350",  # CJK extensions (and just past G)
        *"①㍻…\u3000\u00a0\u2028Ⅻ²½",
        *"ŉΐǅ‿・゠゛ヿ豈﨎\ufb2c",  # full folds, kana outside \w, compatibility ideographs
        *"\U0001d400\U0001d7d8\U00010400\U0001f600",  # astral letters, digits, Deseret, emoji
    ]
)
_PIECES = st.one_of(
    _ALPHABET,
    st.sampled_from(["x" * MAX_TOKEN_CHARS, "y" * (MAX_TOKEN_CHARS + 1), "ß" * 40, "ß" * 41, "客", "数据"]),
    st.text(min_size=1, max_size=3),
)


@needs_native
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=60).map("".join))
def test_generated_text(text: str) -> None:
    _same(text)


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    _same(text)


@needs_native
def test_long_words_are_dropped_by_folded_length() -> None:
    for word in ["x" * 80, "x" * 81, "ß" * 40, "ß" * 41, "Ｘ" * 80, "Ｘ" * 81, "\U0001d400" * 81, "é" * 81]:
        for text in [word, f"a {word} b", f"客{word}户", f"{word}_{word}", f"İ{word}"]:
            _same(text)
    assert token_string("ok " + "\U0001d400" * 81) == "ok"  # a dropped word leaves no wide character behind
    assert token_string("ok " + "\U0001d400" * 81).isascii()


@needs_native
def test_regions_folded_by_unicodedata() -> None:
    """Combining marks separated by runs of boundary characters around the region cut (16)."""
    rng = random.Random(3)
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(rng.choice(["\u0301", "\u0323", "\u1161", "\u11a8", "\u3099", "ﬁ", "ß"]))
            parts.append("".join(rng.choice("ae客가\u1100Ｅ ") for _ in range(rng.randint(0, 20))))
        _same("".join(parts))
    _same("\u0301" * 1000 + "a" * 40 + "e\u0301" * 500)


@needs_native
def test_lone_surrogates() -> None:
    for text in ["\ud800", "a\udc00b", "客\ud83d户", "\ud800\u0301x"]:
        _same(text)


@needs_native
def test_empty_and_separators_only() -> None:
    for text in ["", " ", "_", "...", "\u3000\u00a0", "\u0301", "é"]:
        _same(text)
    assert token_string("") == "" and tokenize("") == []


@needs_native
def test_a_large_posting() -> None:
    rng = random.Random(4)
    words = ["客户数据库", "ACME", "泄露", "ｱｲｳ", "İstanbul", "straße", "e\u0301", "한국어", "x" * 90, "a_b"]
    text = " ".join(rng.choice(words) for _ in range(15_000 if SANITIZED else 150_000))
    _same(text)


@needs_native
def test_not_a_str() -> None:
    with pytest.raises(TypeError):
        native.token_string(b"bytes")


# --------------------------------------------------------------------------- realistic text


def _corpus() -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import detect  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return detect.format_texts(11, (300, 10_000))  # type: ignore[no-any-return]


@needs_native
def test_benchmark_corpus() -> None:
    texts = _corpus()
    assert any(not t.isascii() for t in texts) and any(t.isascii() for t in texts)
    for text in texts:
        _same(text)
