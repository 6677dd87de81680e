"""The native selector scan (core/search/_native/selectors.c) finds exactly what the regexes find.

`core.search._selectors.scan(text)` returns, per selector kind, the list ``_<KIND>_SCAN.findall(text)``
gives (core/search/base.py: the regexes are the definition). Every scan is compared with its regex on
generated text (hypothesis and seeded soups of near-miss pieces: digits of other scripts, the letters
İ ı ſ K that ``[a-z]`` matches under IGNORECASE, CJK, separators), on every posting format of the
benchmark corpus, in all three string kinds (Latin-1, UCS-2, UCS-4), and on long inputs (linear time).
The "cooked" form is compared with the Python normalisation it replaces, and `extract_selectors` with its
regex path. Run under ASan/UBSan by `make sanitize` (Makefile SANITIZE_TESTS).
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.search import base

selectors = pytest.importorskip("core.search._selectors")

SCANS = [
    base._EMAIL_SCAN,
    base._DOMAIN_SCAN,
    base._IPV4_SCAN,
    base._IPV6_SCAN,
    base._HASH_SCAN,
    base._BTC_LEGACY_SCAN,
    base._BTC_BECH32_SCAN,
    base._CARD_SCAN,
    base._PHONE_INTL_SCAN,
    base._PHONE_NATIONAL_SCAN,
    base._CN_MOBILE_SCAN,
]

# One character forces each string kind; none is a digit, a word character or a separator.
KIND_PREFIXES = ["", "\u00a0", "\u2028", "\U0001f600"]


def assert_scans_equal(text: str) -> None:
    for prefix in KIND_PREFIXES:
        for variant in (prefix + text, text + prefix):
            got = selectors.scan(variant)
            assert len(got) == len(SCANS)
            for pattern, found in zip(SCANS, got, strict=True):
                assert found == pattern.findall(variant), (pattern.pattern, variant)


# --------------------------------------------------------------------------- generated text

HEX = "0123456789abcdefABCDEF"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH = "02345678acdefghjklmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ\u017f\u212a"
# Digits of other scripts (Arabic-Indic, fullwidth, mathematical), letters with case quirks, CJK, word
# characters that are not letters of any pattern, a lone surrogate.
ODD = [
    "٣",
    "１",
    "\u0660",
    "𝟙",
    "\U0001d7d8",
    "İ",
    "ı",
    "ſ",
    "\u212a",
    "中",
    "文",
    "é",
    "_",
    "Ⅻ",
    "²",
    "\udc00",
]
ALPHABET = list("0123456789 .-+()@:abcdefABCDEFxyzgoOIl_%\n/,") + ODD


def _run(rng: random.Random, chars: str, lo: int, hi: int) -> str:
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def piece(rng: random.Random) -> str:
    """A near miss (or hit) of some selector kind."""
    k = rng.randrange(22)
    if k == 0:
        return _run(rng, "0123456789", 1, 20)
    if k == 1:
        return _run(rng, HEX, *rng.choice([(31, 33), (39, 41), (63, 65), (1, 70)]))
    if k == 2:
        return rng.choice(" .-+()@:/,_\n\t")
    if k == 3:
        return _run(rng, "abcxyzKS-0", 1, 8)
    if k == 4:
        return rng.choice(ODD)
    if k == 5:
        return rng.choice("13") + _run(rng, B58 + "0OIl", 20, 36)
    if k == 6:
        return rng.choice(["bc1", "BC1", "bC1", "Bc1"]) + _run(rng, BECH + "1bio", 8, 75)
    if k == 7:
        return "+" + _run(rng, "0123456789 .-()", 1, 30)
    if k == 8:
        return "00" + _run(rng, "0123456789 .-()٣", 1, 30)
    if k == 9:
        return "1" + rng.choice("3456789") + _run(rng, "0123456789٣", 7, 11)
    if k == 10:
        return ".".join(str(rng.randint(0, 400)) for _ in range(rng.randint(2, 5)))
    if k == 11:
        return ":".join(_run(rng, HEX, 0, 5) for _ in range(rng.randint(1, 9)))
    if k == 12:
        return _run(rng, "0123456789", 1, 5) + rng.choice(" -.")
    if k == 13:
        return "(" + _run(rng, "0123456789", 1, 5) + rng.choice([")", ") ", ")-", ""])
    if k == 14:
        return ".".join(_run(rng, "abz09-İKſ", 0, 6) for _ in range(rng.randint(1, 10)))
    if k == 15:
        return _run(rng, "ab.%+-_9İ", 1, 70) + "@"
    if k == 16:
        return "x" * rng.randint(60, 66)
    if k == 17:
        return _run(rng, "0123456789٣１", 1, 6)
    if k == 18:
        return rng.choice(
            ["a" * 62 + ".", "a" * 63 + ".", "a" * 64 + ".", "b" * 63, "c" * 64, "d-" * 33 + "."]
        )
    if k == 19:
        return _run(rng, "0123456789 -", 10, 40)
    if k == 20:
        return rng.choice(["alice@", "bob.smith+x@", "@", "mail.", ".com", ".cn", "xn--", "com"])
    return _run(rng, "".join(ALPHABET), 1, 12)


def soup(rng: random.Random, pieces: int) -> str:
    return "".join(piece(rng) for _ in range(rng.randint(1, pieces)))


def test_scans_equal_the_regexes_on_seeded_soups() -> None:
    rng = random.Random(20261204)
    for _ in range(4000):
        assert_scans_equal(soup(rng, 12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(ALPHABET), max_size=120))
def test_scans_equal_the_regexes_on_text_of_the_rich_alphabet(text: str) -> None:
    assert_scans_equal(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(1, 16))
def test_scans_equal_the_regexes_on_generated_pieces(rng: random.Random, pieces: int) -> None:
    assert_scans_equal(soup(rng, pieces))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_scans_equal_the_regexes_on_any_text(text: str) -> None:
    assert_scans_equal(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("0123456789 .-()+_a٣")), max_size=60))
def test_phone_and_card_scans_equal_the_regexes_on_number_text(text: str) -> None:
    """The backtracking of the phone patterns (optional separators and parentheses, 1-5 digit groups)."""
    assert_scans_equal(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@",
        "a@b.co",
        "x@a.b.c.d.e.f.g.h.i.jk x@a.b.c.d.e.f.g.h.jk",
        "1.2.3.4 1.2.3.4.5 01.2.3.4. 1.2.3.4.5 255.255.255.255.1",
        "::1 a::b::c 1:2:3:4:5:6:7:8 1:2:3:4:5:6:7:8:9 .::1 12:30:45 fffff::1",
        "4111 1111 1111 1111 4111-1111-1111-1111- 4111111111111111 1 2 3 4 5 6 7 8 9 0 1 2 3",
        "+86 138 0013 8000 0086-10-6552-1234 +1 (555) 123-4567 +49 (0)30 1234567x",
        "(010) 6552 1234 010-6552-1234 12 345 6789. 555.123.4567",
        "13912345678 139123456789 1391234567٣ 139١٢٣٤٥٦٧٨",
        "1BoatSLRHtKNngkdXEeobR76b53LETtpyT bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "bC1" + "q" * 20 + "ſ3" + "a" * 26,
        "d41d8cd98f00b204e9800998ecf8427e " + "a" * 40 + " " + "F" * 64 + "g",
    ],
)
def test_scans_equal_the_regexes_on_known_cases(text: str) -> None:
    assert_scans_equal(text)


def test_every_block_offset_of_the_vector_loops() -> None:
    """The digit loop and the character search look at 16 bytes / 8 UCS-2 characters at a time: each
    trigger at every offset of a block, with the block boundary inside a match."""
    for lead in range(0, 40):
        for body in [
            "+86 138 0013 8000",
            "4111 1111 1111 1111",
            "(010) 6552 1234",
            "bc1" + "q" * 12,
            "a@b.cn",
        ]:
            assert_scans_equal("x" * lead + body + " y")
            assert_scans_equal("中" * lead + body + "文")


# --------------------------------------------------------------------------- corpus


def _bench(name: str) -> Any:
    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """Postings of every format of bench/detect.py, and crawl postings of bench/crawl.py."""
    texts: list[str] = _bench("detect").format_texts(12)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        crawl = _bench("crawl")
    finally:
        sys.path.pop(0)
    pastes, _ = crawl.make_pastes(60, 10000, 5)
    return texts + [p.text for p in pastes]


def test_scans_equal_the_regexes_on_the_benchmark_corpus(corpus: list[str]) -> None:
    found = 0
    for text in corpus:
        got = selectors.scan(text)
        for pattern, matches in zip(SCANS, got, strict=True):
            assert matches == pattern.findall(text), pattern.pattern
            found += len(matches)
    assert found > 1000


def test_selectors_equal_the_regex_path_on_the_benchmark_corpus(corpus: list[str]) -> None:
    total = 0
    for text in corpus:
        expected = base._selectors_regex(text)
        assert base.extract_selectors(text) == expected
        total += len(expected)
    assert total > 1000


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(1, 30))
def test_selectors_equal_the_regex_path_on_generated_pieces(rng: random.Random, pieces: int) -> None:
    text = soup(rng, pieces)
    assert base._selectors_native(text, selectors.scan) == base._selectors_regex(text)


# --------------------------------------------------------------------------- cooked form


def _cooked_reference(text: str) -> tuple[dict[str, list[str]], list[str]]:
    emails: dict[str, list[str]] = {}
    for found in base._EMAIL_SCAN.findall(text):
        local, _, host = found.rpartition("@")
        if local.isascii():
            emails.setdefault(host, []).append(local.lower())
    cards = []
    for found in base._CARD_SCAN.findall(text):
        digits = found.replace(" ", "").replace("-", "")
        if digits.isascii() and base._luhn(digits):
            cards.append(digits)
    return emails, cards


def test_cooked_emails_and_cards_are_the_python_normalisation() -> None:
    rng = random.Random(7)
    texts = [soup(rng, 20) for _ in range(2000)]
    texts += [
        "Bob.Smith@Example.COM bob.smith@example.com İx@a.com ab@a.com AB@A.COM x@"
        + ".".join(f"h{i}" for i in range(20))
        + ".com",
        "4111 1111 1111 1111 4111-1111-1111-1112 ٤111111111111111 4111111111111111 378282246310005",
    ]
    texts += [" ".join(f"u{i}@host{i % 20}.com" for i in range(200))]  # more hosts than the host cache
    for text in texts:
        raw = selectors.scan(text)
        cooked = selectors.scan(text, cooked=True)
        emails, cards = _cooked_reference(text)
        assert cooked[0] == emails, text
        assert cooked[7] == cards, text
        for k in (1, 2, 3, 4, 5, 6, 8, 9, 10):
            assert cooked[k] == raw[k]


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "text",
    [
        "1" * 300_000,
        "1 " * 150_000,
        "+1 " * 100_000,
        "00" * 150_000,
        "(1" * 150_000,
        "a." * 150_000,
        "a" * 300_000 + ".com",
        "a@" * 150_000,
        ("a" * 63 + ".") * 5_000,
        "f" * 300_000,
        ":" * 300_000,
        "1:" * 150_000,
        "1." * 150_000,
        "bc1" * 100_000,
        "٣" * 300_000,
        "+" + "1" * 299_999,
    ],
)
def test_long_inputs_scan_in_linear_time_and_equal_the_regexes(text: str) -> None:
    start = time.process_time()
    got = selectors.scan(text)
    assert time.process_time() - start < 1.0
    for pattern, found in zip(SCANS, got, strict=True):
        assert found == pattern.findall(text), pattern.pattern


def test_scan_takes_only_str() -> None:
    with pytest.raises(TypeError):
        selectors.scan(b"1.2.3.4")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        selectors.scan(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- routing


def test_extract_selectors_routes_through_the_native_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The native module is built, imported by base, and used unless LEAKSENTINEL_NATIVE_SCAN=0."""
    assert base._native_scan is selectors.scan
    calls: list[str] = []

    def spy(text: str, cooked: bool = False) -> tuple[Any, ...]:
        calls.append(text)
        return selectors.scan(text, cooked)

    monkeypatch.setattr(base, "_native_scan", spy)
    monkeypatch.delenv("LEAKSENTINEL_NATIVE_SCAN", raising=False)
    text = "alice@acme.com 4111 1111 1111 1111 +86 138 0013 8000"
    assert base.extract_selectors(text) == base._selectors_regex(text)
    assert calls == [text]
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    assert base.extract_selectors(text) == base._selectors_regex(text)
    assert calls == [text]
