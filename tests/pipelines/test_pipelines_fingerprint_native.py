"""The native fingerprints (SimHash, winnowing) equal the Python references bit for bit.

Why differential: stored postings keep their SimHash and bands, and registered documents keep their
winnowing fingerprints; a native value that differed by one bit would silently stop near-duplicate
grouping and document matching across the switch. So every value is compared with the reference, on
random text of every script, Chinese text, and the characters whose case folding or class is special.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import fold
from pipelines import fingerprint
from pipelines.detection import documents

native = pytest.mark.skipif(not fingerprint.native_available(), reason="native fingerprints not built")
KEY = bytes(range(32))

CN = (
    "我们今天讨论的是关于数据安全的问题随着互联网的发展越来越多的企业开始重视用户隐私保护这是一个"
    "非常重要的话题在过去的几年里很多公司都遭遇了数据泄露事件给用户带来了巨大的损失"
)
# characters where a tokeniser or a case fold is easy to get wrong: full folds (ß, ﬁ, İ), final sigma,
# numerics that are not decimal (Ⅻ, ², ½), kana outside \w (・ ゠ ゛), CJK compatibility, underscores,
# combining marks, astral letters and digits, full-width forms, surrogates (never part of a token)
SPECIAL = "ßﬁİıΣσςǅẞŉΐ Ⅻ²½٣߁ ・゠゛ヿ㐀豈﨎 _‿ é\u0301 𝐀𝟘𐐀𠀀 ＡＢＣ１２３ \ud800 \n\t.,;:@-"
WORDS = [
    "alpha",
    "Beta",
    "GAMMA",
    "straße",
    "İstanbul",
    "数据",
    "泄露",
    "カタカナ",
    "ひらがな",
    "Ⅻ",
    "a_b",
    "x1",
]

any_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0x3000, max_codepoint=0x30FF),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),
        st.sampled_from(SPECIAL),
    ),
    max_size=400,
)
worded = st.lists(
    st.tuples(
        st.sampled_from(WORDS) | st.text(alphabet=SPECIAL + "abcXYZ019中文", min_size=1, max_size=6),
        st.sampled_from([" ", "\n", ", ", "", "_", "・", "—"]),
    ),
    min_size=0,
    max_size=120,
).map(lambda parts: "".join(w + sep for w, sep in parts))
chinese = st.lists(st.integers(0, len(CN) - 30), min_size=1, max_size=30).map(
    lambda starts: "，".join(CN[s : s + 8 + s % 20] for s in starts) + "。\n"
)
texts = any_text | worded | chinese

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_native_fingerprints_are_built_where_required() -> None:
    if os.environ.get("LEAKSENTINEL_TEST_REQUIRE_NATIVE") != "1":
        pytest.skip("LEAKSENTINEL_TEST_REQUIRE_NATIVE=1 is set by CI only")
    assert fingerprint.native_available(), "the C extension pipelines.detection._fingerprint did not build"
    assert documents.native_available()


def test_switched_off_by_the_scanner_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    assert not fingerprint.native_available()
    assert not documents.native_available()


@native
@FAST
@given(st.binary(max_size=300), st.sampled_from([b"", b"k", KEY, bytes(64)]))
def test_blake2b_equals_hashlib(message: bytes, key: bytes) -> None:
    expected = int.from_bytes(hashlib.blake2b(message, digest_size=8, key=key).digest(), "big")
    assert documents._native.blake2b8(message, key) == expected


@native
@FAST
@given(texts)
def test_simhash_equals_the_reference(text: str) -> None:
    assert fingerprint.simhash(text) == fingerprint.simhash_py(text)


@native
@pytest.mark.parametrize(
    "text",
    [
        "",
        "one two three four five six seven eight nine ten eleven",  # 11 tokens: None
        "one two three four five six seven eight nine ten eleven twelve",
        CN * 3,
        "abc中文def 中文abc " * 20,  # CJK inside a Latin run stays in the run; alone it is one token each
        "x" * 300 + " " + " ".join(["y" * 129] * 14),  # shingles longer than one BLAKE2b block
        " ".join(f"w{i}" for i in range(60_000)),  # past the 50,000-token limit
        "word " * 400_001 + "tail",  # past the 2,000,000-character limit, cutting a token
    ],
)
def test_simhash_edges(text: str) -> None:
    assert fingerprint.simhash(text) == fingerprint.simhash_py(text)


@native
def test_simhash_of_a_near_duplicate_stays_near() -> None:
    text = " ".join(f"line {i} of the dump with value {i * 7}" for i in range(300))
    edited = text.replace("value 21 ", "value 22 ")
    a, b = fingerprint.simhash(text), fingerprint.simhash(edited)
    assert a is not None and b is not None
    assert fingerprint.hamming(a, b) <= 3
    assert a == fingerprint.simhash_py(text) and b == fingerprint.simhash_py(edited)


def _reference_fingerprints(text: str, key: bytes | None, k: int, window: int) -> set[int]:
    norm = documents.normalize_for_fingerprint(text)
    raw = documents._window_minima(documents._kgram_hashes(norm, k, fast=False), window)
    return {documents._keyed(h, key) for h in raw}


@native
@FAST
@given(texts, st.sampled_from([None, b"", KEY]), st.sampled_from([(25, 20), (3, 4), (1, 1), (5, 50)]))
def test_winnowing_equals_the_reference(text: str, key: bytes | None, params: tuple[int, int]) -> None:
    k, window = params
    assert documents.fingerprints(text, k, window, key=key) == _reference_fingerprints(text, key, k, window)


@native
@FAST
@given(texts)
def test_winnow_returns_raw_minima_beside_their_keyed_values(text: str) -> None:
    keyed, raw = documents._native.winnow(fold(text), 4, 3, KEY)
    norm = documents.normalize_for_fingerprint(text)
    minima = documents._window_minima(documents._kgram_hashes(norm, 4, fast=False), 3)
    assert list(array("Q", raw)) == sorted(minima)
    assert list(array("Q", keyed)) == [documents._keyed(h, KEY) for h in sorted(minima)]


def _posting(seed: int) -> str:
    lines = []
    for i in range(400):
        if i % 3 == 0:
            lines.append(CN[(i * 7) % 60 : (i * 7) % 60 + 25] + f" 第{i}行")
        elif i % 3 == 1:
            lines.append(f"Row {i}: the quarterly plan for project {seed} says revenue {i * 13} units")
        else:
            lines.append("")
    return "\n".join(lines)


@native
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 380), st.integers(5, 60), st.sampled_from([None, KEY]), texts)
def test_document_matcher_finds_the_same_documents_on_the_same_lines(
    start: int, length: int, key: bytes | None, noise: str
) -> None:
    posting = _posting(1)
    lines = posting.split("\n")
    doc = "\n".join(lines[start : start + length])
    other = _posting(2)
    matcher = documents.DocumentMatcher(
        [
            (1, 10, "piece", documents.fingerprints(doc, key=key)),
            (2, 20, "other", documents.fingerprints(other, key=key)),
            (1, 30, "noise", documents.fingerprints(noise + CN, key=key)),
        ]
    )
    text = noise + "\n" + posting
    native_hits = matcher.find(text, key=key)
    os.environ["LEAKSENTINEL_NATIVE_SCAN"] = "0"
    try:
        python_hits = matcher.find(text, key=key)
    finally:
        del os.environ["LEAKSENTINEL_NATIVE_SCAN"]
    assert native_hits == python_hits
    if documents.fingerprints(doc, key=key):
        assert any(h.watch_id == 10 for h in native_hits)


@native
def test_first_line_counts_lines_before_the_first_letter() -> None:
    text = "\n\n\n" + "!!\n" * 5 + CN + "\nsecond line of the document with more words"
    matcher = documents.DocumentMatcher([(1, 1, "cn", documents.fingerprints(CN, key=KEY))])
    (hit,) = matcher.find(text, key=KEY)
    assert hit.line == 9
    os.environ["LEAKSENTINEL_NATIVE_SCAN"] = "0"
    try:
        assert matcher.find(text, key=KEY) == [hit]
    finally:
        del os.environ["LEAKSENTINEL_NATIVE_SCAN"]


@native
def test_bad_parameters_are_errors_not_crashes() -> None:
    with pytest.raises(ValueError):
        documents._native.winnow("abc", 0, 20, None)
    with pytest.raises(ValueError):
        documents._native.winnow("abc", 25, 20, bytes(65))
    with pytest.raises(TypeError):
        documents._native.winnow(b"abc", 25, 20, None)
    with pytest.raises(TypeError):
        fingerprint._native.simhash(b"bytes")  # type: ignore[union-attr]
    with pytest.raises(OverflowError):
        documents._native.first_lines("abc", 2, [-1])


@native
@FAST
@given(
    texts
    | st.text(
        alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000aZİß"), max_size=60
    )
)
def test_content_hash_equals_the_reference(text: str) -> None:
    try:
        expected = fingerprint.content_hash_py(text)
    except UnicodeEncodeError:  # a lone surrogate: the native path gives way to the reference
        with pytest.raises(UnicodeEncodeError):
            fingerprint.content_hash(text)
        return
    assert fingerprint.content_hash(text) == expected


# --------------------------------------------------------------------------- the fast paths (issue 12)
#
# Each loop over a str is compiled once per PyUnicode kind (1, 2 or 4 bytes a character); BLAKE2b runs
# eight messages at a time (one 512-bit lane each where the CPU has AVX-512, else twice four), with
# kernels for messages of at most 1, 4 and 16 words and idle lanes in a last, partial batch; winnowing
# reads the text in steps of 4096 characters and takes window minima from minima of four (windows of 4
# to 32), by doubling (up to 256) or by a deque (larger). The tests below reach every one of those paths and compare with the references.

STEP = 4096  # characters winnow reads per step (W_CHUNK in fingerprint.c)
# kept by NFKC and case folding; neither a letter, digit, token nor host character
ARROW, EMOJI = "\u2192", "\U0001f600"
KINDS = [
    st.characters(max_codepoint=0x7F),
    st.characters(max_codepoint=0xFF),
    st.characters(max_codepoint=0xFFFF),
    st.characters(),
    st.sampled_from("ab1 .\n-_"),
    st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1d\x1f\x7faZ0_"),  # ASCII: white space and token ends
]
kinded = st.one_of(*(st.text(alphabet=a, max_size=300) for a in KINDS))


def _content_fold_py(text: str) -> bytes | None:
    """What content_fold gives: the UTF-8 the reference hashes, None when it holds a lone surrogate."""
    try:
        return " ".join(text.split()).casefold().encode("utf-8")
    except UnicodeEncodeError:
        return None


def _widened(text: str) -> list[str]:
    """The text as it is and forced to two and four bytes a character by one trailing character that no
    fingerprint reads (not a letter, digit, token or host character)."""
    return [text, text + ARROW, text + EMOJI]


def _long_text(seed: int, length: int, alphabet: str) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


LONG_ALPHABETS = ["ab c\n", "abcdefghij0123 ", "数据泄露 ab", "ßİ𝐀𝟘Ⅻ x.", "a"]


@native
def test_vector_width_is_eight_or_four() -> None:
    assert documents._native.vector_width() in (4, 8)


@native
@FAST
@given(
    st.lists(st.binary(max_size=200), max_size=17),
    st.sampled_from([b"", b"k", KEY, bytes(64)]),
)
def test_batched_blake2b_equals_hashlib(messages: list[bytes], key: bytes) -> None:
    expected = [int.from_bytes(hashlib.blake2b(m, digest_size=8, key=key).digest(), "big") for m in messages]
    assert documents._native.blake2b8_lanes(messages, key) == expected


@native
@pytest.mark.parametrize("count", range(18))
@pytest.mark.parametrize("length", [0, 1, 8, 9, 32, 33, 64, 127, 128, 129])
def test_batched_blake2b_every_lane_count_and_word_count(count: int, length: int) -> None:
    messages = [bytes([i + 1]) * length for i in range(count)]
    for key in (b"", KEY):
        expected = [
            int.from_bytes(hashlib.blake2b(m, digest_size=8, key=key).digest(), "big") for m in messages
        ]
        assert documents._native.blake2b8_lanes(messages, key) == expected


@native
@FAST
@given(kinded | texts)
def test_every_string_kind_gives_the_reference_values(text: str) -> None:
    folded = fold(text)
    for wide in _widened(text):
        assert fingerprint.simhash(wide) == fingerprint.simhash_py(text)
        assert documents._native.content_fold(wide) == _content_fold_py(wide)
    for k, window in ((25, 20), (3, 4), (1, 1)):
        expected = documents._native.winnow(folded, k, window, KEY)
        for wide in _widened(folded):
            assert documents._native.winnow(wide, k, window, KEY) == expected
    assert {documents._keyed(h, KEY) for h in array("Q", expected[1])} == _reference_fingerprints(
        text, KEY, 1, 1
    )


@native
@pytest.mark.parametrize("tokens", range(10, 31))
@pytest.mark.parametrize("ascii", [True, False])
def test_simhash_every_partial_batch(tokens: int, ascii: bool) -> None:
    words = ["w", "word", "longerword", "x" * 20, "y" * 40] + ([] if ascii else ["数", "ß"])
    for shift in range(len(words)):
        text = " ".join(words[(i + shift) % len(words)] + str(i) for i in range(tokens))
        for wide in _widened(text):
            assert fingerprint.simhash(wide) == fingerprint.simhash_py(text)


@native
@pytest.mark.parametrize("pad", [0, 7, 201])
def test_simhash_token_limit_at_every_offset(pad: int) -> None:
    """The ASCII tokeniser reads 256 characters at a time, the other one takes its ASCII blocks of 32
    branch-free until the limit is near: the 50,000th token and the start of the next fall at different
    places in a block; the text may end inside the 50,000th token."""
    exact = "_" * pad + " ".join(f"T{i}" for i in range(50_000))
    over = exact + " same word here" * 10_000  # read past the limit, these would turn the SimHash
    for text in (over, exact, exact + "zz", "数 " + over, "数 " + exact[4:]):
        assert fingerprint.simhash(text) == fingerprint.simhash_py(text)
    # two shingles taking turns: 50,000 tokens give each 24,999 votes, a tie on every bit where their
    # hashes differ; one token more would break it
    tie = "_" * pad + "x y " * 30_000
    for text in (tie, ARROW + tie):
        assert fingerprint.simhash(text) == fingerprint.simhash_py(text)


@native
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32),
    st.sampled_from([0, 1, STEP - 1, STEP, STEP + 1, 2 * STEP + 7, 3 * STEP + 301]),
    st.sampled_from(LONG_ALPHABETS),
    st.sampled_from(
        [
            (25, 20),
            (1, 1),
            (5, 7),
            (3, 31),
            (2, 32),
            (4, 33),
            (2, 256),
            (3, 257),
            (4, 700),
            (50, 3),
            (300, 2),
            (1, 4100),
        ]
    ),
    st.sampled_from([None, b"", KEY]),
)
def test_winnowing_long_texts_across_steps_equals_the_reference(
    seed: int, length: int, alphabet: str, params: tuple[int, int], key: bytes | None
) -> None:
    """Texts over several 4096-character steps, windows for both minima paths (doubling up to 256, the
    deque above), k longer than a step; against the numpy reference (itself tested against pure Python)."""
    k, window = params
    text = _long_text(seed, length, alphabet)
    norm = documents.normalize_for_fingerprint(text)
    minima = documents._window_minima(documents._kgram_hashes(norm, k), window)
    keyed, raw = documents._native.winnow(fold(text), k, window, key)
    assert list(array("Q", raw)) == sorted(minima)
    assert list(array("Q", keyed)) == [documents._keyed(h, key) for h in sorted(minima)]


@native
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(0, 3 * STEP), st.sampled_from(LONG_ALPHABETS), st.data())
def test_first_lines_equal_the_reference(seed: int, length: int, alphabet: str, data: st.DataObject) -> None:
    text = _long_text(seed, length, alphabet + "\n\n")
    norm, letter_lines = documents._normalized_lines(text)
    hashes = [int(h) for h in documents._kgram_hashes(norm, 5)]
    absent = data.draw(st.lists(st.integers(0, 2**64 - 1), max_size=3))
    wanted = sorted(
        set(data.draw(st.lists(st.sampled_from(hashes), max_size=20)) if hashes else []) | set(absent)
    )
    expected = {}
    for i, h in enumerate(hashes):
        if h in wanted and h not in expected:
            expected[h] = (i, letter_lines.line(i))
    for wide in _widened(fold(text)):
        assert documents._native.first_lines(wide, 5, wanted) == expected


def _host_spans_reference(text: str, hashes: set[int], maxlen: int, need_dot: bool) -> list[tuple[int, int]]:
    """host_spans by brute force over every (start, end), from its definition."""

    def host(c: str) -> bool:
        return c.isalnum() or c in "-_"

    n, out = len(text), []
    for e in range(1, n + 1):
        after_ok = e == n or not (host(text[e]) or (text[e] == "." and e + 1 < n and host(text[e + 1])))
        for s in range(max(0, e - maxlen), e):
            span = text[s:e]
            if not after_ok or not all(host(c) or c == "." for c in span):
                continue
            if (s > 0 and host(text[s - 1])) or (need_dot and "." not in span):
                continue
            if documents._native.host_hash(span) in hashes:
                out.append((s, e))
    return out


def _host_hash_py(needle: str) -> int:
    h = 0
    for c in needle:
        h = (h * documents._BASE + ord(c)) & documents._MASK64
    return documents._mix_py(h)


HOST_PIECES = st.sampled_from(
    ["a", "b", "ab", ".", "-", "_", " ", "\n", "é", "数", "𝐀", "a.b", "..", "@", "→"]
)


@native
@FAST
@given(
    st.lists(HOST_PIECES, max_size=40).map("".join),
    st.lists(st.lists(HOST_PIECES, min_size=1, max_size=4).map("".join), min_size=1, max_size=6),
    st.integers(1, 12),
    st.booleans(),
)
def test_host_spans_equal_their_definition(
    text: str, needles: list[str], maxlen: int, need_dot: bool
) -> None:
    hashes = {_host_hash_py(n) for n in needles} | {
        _host_hash_py(text[i : i + 3]) for i in range(0, len(text), 5)
    }
    assert all(documents._native.host_hash(n) == _host_hash_py(n) for n in needles)
    table = array("Q", sorted(hashes)).tobytes()
    expected = _host_spans_reference(text, hashes, maxlen, need_dot)
    for wide in _widened(text):
        assert documents._native.host_spans(wide, table, maxlen, need_dot) == expected


@native
@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(0, 1500),
    st.sampled_from(["ab \n", "a\r\n\x00\x7f", "数\r", "\t\x0b\x0c\x1fé"]),
    st.sampled_from(["", ARROW, EMOJI]),
)
def test_clean_text_equals_the_reference_in_every_block(
    seed: int, length: int, alphabet: str, wide: str
) -> None:
    text = _long_text(seed, length, alphabet) + wide
    expected = re.sub(
        r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", text.replace("\r\n", "\n").replace("\r", "\n")
    )
    assert documents._native.clean_text(text) == expected


@native
def test_four_lane_kernels_give_the_same_values() -> None:
    """What a CPU without AVX-512 runs (the four-lane kernels, forced by LEAKSENTINEL_FINGERPRINT_LANES=4
    in a fresh interpreter) gives the values of the eight-lane ones and of hashlib."""
    script = (
        "import json, sys\n"
        "from pipelines.detection import _fingerprint as f\n"
        "messages = [bytes([i]) * i for i in range(0, 140, 3)]\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps([f.vector_width(), f.blake2b8_lanes(messages, b''), f.blake2b8_lanes(messages, b'k'),"
        " [f.simhash(t) for t in texts], [f.winnow(t, 5, 4, b'k')[0].hex() for t in texts]]))\n"
    )
    texts = [CN * 2, " ".join(f"w{i} 数据" for i in range(300)), "plain ascii words " * 40]
    env = dict(os.environ, LEAKSENTINEL_FINGERPRINT_LANES="4")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(documents.__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(texts),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    width, plain, keyed, simhashes, winnows = json.loads(done.stdout)
    assert width == 4
    messages = [bytes([i]) * i for i in range(0, 140, 3)]
    for key, got in ((b"", plain), (b"k", keyed)):
        assert got == [
            int.from_bytes(hashlib.blake2b(m, digest_size=8, key=key).digest(), "big") for m in messages
        ]
    assert simhashes == [fingerprint.simhash_py(t) for t in texts]
    assert winnows == [documents._native.winnow(t, 5, 4, b"k")[0].hex() for t in texts]


@native
@pytest.mark.parametrize("window", [*range(1, 41), 255, 256, 257])
def test_every_small_window_equals_the_reference(window: int) -> None:
    """Windows of 4 to 32 take two or three passes (fours, then the whole fours and an overlapping last
    one), the others doubling (up to 256) or the deque: every size against the reference."""
    for seed, (length, alphabet) in enumerate(
        [(30, "ab c"), (STEP + 77, "abcdefghij0123 "), (900, "数据 ab")]
    ):
        text = _long_text(seed, length, alphabet)
        norm = documents.normalize_for_fingerprint(text)
        for k in (1, 4):
            minima = documents._window_minima(documents._kgram_hashes(norm, k), window)
            _, raw = documents._native.winnow(fold(text), k, window, None)
            assert list(array("Q", raw)) == sorted(minima)


@native
@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(0, 700),
    st.sampled_from([" a\t\nB", "  \u3000数 a\xa0", "\x85 ßİ\x1c", "ab", "   \n"]),
    st.sampled_from(["", ARROW, EMOJI, "\u3000", "\ud800"]),
)
def test_content_fold_across_blocks(seed: int, length: int, alphabet: str, extra: str) -> None:
    """content_fold takes blocks of 32 characters, branch-free when a block is all ASCII: white-space
    runs across blocks of both sorts, at the start and at the end, in every kind."""
    text = _long_text(seed, length, alphabet)
    for wide in (text, extra + text, text + extra, text[: length // 2] + extra + text[length // 2 :]):
        assert documents._native.content_fold(wide) == _content_fold_py(wide)
