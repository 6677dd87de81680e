"""Search indexing made cheaper must index exactly what it indexed before (issue 12).

`extract_selectors` now skips each scan whose trigger a posting lacks (RE2 presence tests), normalises
emails through their host's cached terms, checks Luhn with byte tables and IPv4 without ipaddress; `tokenize`
is compared with the implementation it replaced. The reference implementations below are copies of the
code as it was before, and both sides run on generated text (hypothesis), on near-miss pieces of every
selector kind, and on every posting format of the benchmark corpus (bench/detect.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import random
import re
import sys
import unicodedata
from pathlib import Path

import phonenumbers
import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.search import base
from core.search.cjk import CJK_RANGES, MAX_TOKEN_CHARS, token_string, tokenize

# --------------------------------------------------------------------------- reference: extract_selectors
# core/search/base.py's selector scan and normalisers as they were before issue 12 (verbatim, without the
# lru_caches, which never changed a result).

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NON_DIGIT = re.compile(r"\D+")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

# The same patterns, written for scanning a posting (`extract_selectors`): they find exactly the same
# matches (tests/core/test_core_search_batch.py compares them), but each begins with the character class
# its match must start with, so the regex engine skips every other position in a fast C loop instead of
# trying the whole pattern there (the look-behind moves after that first character). That needs
# case-sensitive classes: ``[a-z]`` under IGNORECASE also matches İ ı ſ K (Kelvin sign), spelt out here.
_AZ = "a-zA-Z\u0130\u0131\u017f\u212a"
_ANY = "(?s:.)"
_LABEL_CS = rf"[0-9{_AZ}](?:[0-9{_AZ}-]{{0,61}}[0-9{_AZ}])?"
_LOCAL_CS = rf"0-9._%+{_AZ}-"
_EMAIL_SCAN = re.compile(
    rf"[{_LOCAL_CS}](?<![{_LOCAL_CS}]{_ANY})[{_LOCAL_CS}]{{0,63}}"
    rf"@(?:{_LABEL_CS}\.){{1,8}}[{_AZ}]{{2,63}}(?![0-9{_AZ}-])"
)
_DOMAIN_SCAN = re.compile(
    rf"[0-9{_AZ}](?<![\w.@-]{_ANY})(?:[0-9{_AZ}-]{{0,61}}[0-9{_AZ}])?\."
    rf"(?:{_LABEL_CS}\.){{0,7}}[{_AZ}]{{2,63}}(?![\w-])"
)
_IPV4_SCAN = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\.?\d)")
_IPV6_SCAN = re.compile(
    rf"[0-9a-fA-F:](?<![0-9a-fA-F:.]{_ANY})"
    r"(?:(?<=:)[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){1,6}|(?<!:)[0-9a-fA-F]{0,3}(?::[0-9a-fA-F]{0,4}){2,7})"
    r"(?![0-9a-fA-F:])"
)
_HASH_SCAN = re.compile(
    rf"[0-9a-fA-F](?<![0-9{_AZ}]{_ANY})(?:[0-9a-fA-F]{{63}}|[0-9a-fA-F]{{39}}|[0-9a-fA-F]{{31}})(?![0-9{_AZ}])"
)
_CARD_SCAN = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-]|[ ]\d)")
_BTC_LEGACY_SCAN = re.compile(r"[13](?<![A-Za-z0-9][13])[1-9A-HJ-NP-Za-km-z]{25,34}(?![A-Za-z0-9])")
_BTC_BECH32_SCAN = re.compile(
    rf"[bB](?<![0-9{_AZ}]{_ANY})[cC]1[02-9ac-hj-np-zAC-HJ-NP-Z\u017f\u212a]{{11,71}}(?![0-9{_AZ}])"
)
_PHONE_INTL_SCAN = re.compile(
    rf"[+0](?<![\w+]{_ANY})(?:(?<=\+)|(?<=0)0)(\d{{1,4}}(?:[ .-]?\(?\d{{1,5}}\)?){{1,6}})(?![\w])"
)
_PHONE_NATIONAL_SCAN = re.compile(
    rf"([(\d](?<![\w+(.]{_ANY})(?<!\d[ .-]{_ANY})(?:(?<=\()\d{{2,4}}|(?<!\()\d{{1,3}})\)?[ .-]?\d{{3,4}}[ .-]\d{{3,4}})"
    r"(?![\w.]|[ .-]\d)"
)
_CN_MOBILE_SCAN = re.compile(r"1(?<![\d.+-]1)[3-9]\d{9}(?![\d.-])")
_DIGIT_GROUPS = re.compile(r"\d+")


def _domain(value: str) -> str | None:
    domain = value.strip().rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    if len(domain) > 253 or not _DOMAIN_NAME.fullmatch(domain):
        return None
    return domain


_DOMAIN_NAME = re.compile(rf"(?:{_LABEL}\.){{1,126}}(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})")
_LOCAL_PART = re.compile(r"[A-Za-z0-9._%+-]+")


def _parents(domain: str) -> list[str]:
    """``a.b.acme.com`` → itself, ``b.acme.com``, ``acme.com`` (never the bare TLD)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _email(value: str) -> str | None:
    local, sep, host = value.strip().rpartition("@")
    if not sep or not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    domain = _domain(host)
    return f"{local.lower()}@{domain}" if domain else None


def _ip(value: str) -> str | None:
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        return None


_LUHN_DOUBLED = {str(d): (d * 2 - 9 if d > 4 else d * 2) for d in range(10)}


def _luhn(digits: str) -> bool:
    """Luhn check of ASCII digits (the last one is the check digit)."""
    doubled = _LUHN_DOUBLED
    return (sum(map(int, digits[::-2])) + sum(doubled[c] for c in digits[-2::-2])) % 10 == 0


def _card(value: str) -> str | None:
    digits = value.strip().replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit() and _luhn(digits):
        return digits
    return None


def _base58check(address: str) -> bool:
    num = 0
    for ch in address:
        idx = _B58_INDEX.get(ch)
        if idx is None:
            return False
        num = num * 58 + idx
    raw = num.to_bytes(25, "big") if num.bit_length() <= 200 else b""
    if len(raw) != 25:
        return False
    return hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def _intl_phone(digits: str) -> list[str]:
    """Digits after ``+``/``00`` → [cc+nsn, nsn] when libphonenumber finds a possible number."""
    if not 7 <= len(digits) <= 15:
        return []
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return []
    if not phonenumbers.is_possible_number(number):
        return []
    nsn = phonenumbers.national_significant_number(number)
    return [f"{number.country_code}{nsn}", nsn]


def _national_phone(text: str) -> list[str]:
    digits = _NON_DIGIT.sub("", text).lstrip("0")
    return [digits] if 6 <= len(digits) <= 12 else []


# --------------------------------------------------------------------------- index side


def reference_extract_selectors(text: str) -> set[str]:
    """Every selector term found in a posting's text, normalised like `selector_terms`.

    Each distinct value is normalised once per posting, and recent values' terms are cached across
    postings (a crawl meets the same domains and numbers again and again)."""
    out: set[str] = set()
    if "@" in text:
        for found in set(_EMAIL_SCAN.findall(text)):
            out.update(_email_terms(found))
    if "." in text:
        for found in set(_DOMAIN_SCAN.findall(text)):
            out.update(_domain_terms(found))
        for found in set(_IPV4_SCAN.findall(text)):
            ip = _ip_cached(found)
            if ip:
                out.add(ip)
    if "::" in text or text.count(":") >= 7:
        for candidate in set(_IPV6_SCAN.findall(text)):
            if candidate.strip(":"):
                ip = _ip_cached(candidate)
                if ip and ":" in ip:
                    out.add(ip)
    out.update(h.lower() for h in _HASH_SCAN.findall(text))
    if "1" in text or "3" in text:  # every BTC address holds one ("bc1...", legacy "1..." / "3...")
        for found in set(_BTC_LEGACY_SCAN.findall(text)):
            if _base58check(found):
                out.add(found)
        for found in set(_BTC_BECH32_SCAN.findall(text)):
            if found.islower() or found.isupper():
                out.add(found.lower())
    for found in set(_CARD_SCAN.findall(text)):
        card = _card(found)
        if card:
            out.add(card)
    if "+" in text or "00" in text:
        for found in set(_PHONE_INTL_SCAN.findall(text)):
            out.update(_intl_phone_terms(found))
    for found in set(_PHONE_NATIONAL_SCAN.findall(text)):
        out.update(_national_phone(found))
    for found in set(_CN_MOBILE_SCAN.findall(text)):
        out.update(_national_phone(found))
    return out


def _email_terms(found: str) -> tuple[str, ...]:
    email = _email(found)
    return (email, *_parents(email.rpartition("@")[2])) if email else ()


def _domain_terms(found: str) -> tuple[str, ...]:
    domain = _domain(found)
    return tuple(_parents(domain)) if domain else ()


def _ip_cached(found: str) -> str | None:
    return _ip(found)


def _intl_phone_terms(found: str) -> tuple[str, ...]:
    """An international number as written after ``+``/``00``: the longest prefix of its digit groups
    (dropping at most 3 trailing groups: an extension, a stray number) that is a possible number."""
    groups = _DIGIT_GROUPS.findall(found)
    for cut in range(len(groups), max(len(groups) - 3, 0), -1):
        terms = _intl_phone("".join(groups[:cut]))
        if terms:
            return tuple(terms)
    return ()


# --------------------------------------------------------------------------- reference: tokenize

_REF_CJK_CHAR = re.compile(rf"[{CJK_RANGES}]")
_REF_WORD = re.compile(r"[^\W_]+")
_REF_CJK_SPLIT = re.compile(rf"([{CJK_RANGES}]+)")


def _ref_fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


def _ref_short(words: list[str]) -> list[str]:
    return [w for w in words if len(w) <= MAX_TOKEN_CHARS]


def reference_tokenize(text: str) -> list[str]:
    folded = _ref_fold(text)
    if not _REF_CJK_CHAR.search(folded):
        words = _REF_WORD.findall(folded)
        return words if not words or max(map(len, words)) <= MAX_TOKEN_CHARS else _ref_short(words)
    tokens: list[str] = []
    for i, part in enumerate(_REF_CJK_SPLIT.split(folded)):
        if not i % 2:
            if part:
                tokens.extend(_ref_short(_REF_WORD.findall(part)))
        elif len(part) == 1:
            tokens.append(part)
        else:
            tokens.extend([part[j : j + 2] for j in range(len(part) - 1)])
    return tokens


# --------------------------------------------------------------------------- texts

# Near misses of every kind, and the characters that make the classes differ (İ ı ſ K, other scripts'
# digits, full-width forms, a lone surrogate).
PIECES = [
    *"0123456789abcdefABCDEFxyzXYZkKsSbBcC.-@+:()_%[] \n\t,;/#'\"",
    "\u0130",
    "\u0131",
    "\u017f",
    "\u212a",
    "\u0663",
    "\u0966",
    "\uff10",
    "\ud800",
    "客",
    "户数据",
    "ｱｲ",
    "ＡＣＭＥ",
    "ß",
    "ﬁ",
    "00",
    "000",
    "bc1",
    "BC1",
    "+86 ",
    "+1 ",
    "+44 20 ",
    "0086 ",
    "138",
    "0013",
    "8000",
    "::",
    "@acme.com",
    "@mail.例子.中国",
    "@xn--fsqu00a.xn--fiqs8s",
    ".com",
    ".cn",
    ".co.uk",
    "www.",
    "192.168.",
    "255.",
    "256.",
    "01.",
    "2001:db8:",
    "1:2:3:4:",
    "4111 1111 1111 1111",
    "4111111111111111",
    "6212-3456-7890-1232",
    "11010519491231002X",
    "+1 (415) 555-2671",
    "(010) 6552 1234",
    "010-6552-1234",
    "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "x" * 30,
    "a1b2" * 9,
    "Z" * (MAX_TOKEN_CHARS + 1),
]

pieces_text = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)


def _bench_detect():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "bench_detect", Path(__file__).resolve().parents[2] / "bench" / "detect.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_detect"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """Postings of every benchmark format (bench/detect.py MIX), some with planted people and leaks."""
    bench = _bench_detect()
    postings, _ = bench.build_corpus(400_000, 8_000, 13, 2)
    return [*bench.format_texts(12), *postings]


def _clear_caches() -> None:
    for name in ("_domain_terms", "_ip_cached", "_intl_phone_terms"):
        getattr(base, name).cache_clear()


# --------------------------------------------------------------------------- selectors


def test_selectors_equal_the_reference_on_every_benchmark_format(corpus: list[str]) -> None:
    _clear_caches()
    found = 0
    for text in corpus:
        expected = reference_extract_selectors(text)
        assert base.extract_selectors(text) == expected
        assert base.extract_selectors(text) == expected  # again, from the caches
        found += len(expected)
    assert found > 5000


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces_text)
def test_selectors_equal_the_reference_on_generated_pieces(text: str) -> None:
    assert base.extract_selectors(text) == reference_extract_selectors(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_selectors_equal_the_reference_on_any_text(text: str) -> None:
    assert base.extract_selectors(text) == reference_extract_selectors(text)


def test_selectors_equal_the_reference_on_seeded_piece_soup() -> None:
    rng = random.Random(4)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 90)))
        assert base.extract_selectors(text) == reference_extract_selectors(text), text


def test_every_kind_is_found_past_its_presence_test() -> None:
    text = " ".join(
        [
            "alice@acme.com vpn.globex.cn 10.1.2.3 2001:db8::1 d41d8cd98f00b204e9800998ecf8427e",
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyT bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            "4111 1111 1111 1111 +86 138 0013 8000 (010) 6552 1234 13912345678",
        ]
    )
    found = base.extract_selectors(text)
    assert found == reference_extract_selectors(text)
    kinds = {base.is_selector(t) for t in found}
    assert {"email", "domain", "ipv4", "ipv6", "md5", "btc", "card", "phone"} <= kinds


def test_presence_digit_class_holds_every_character_python_calls_a_digit() -> None:
    """The presence tests write Python's ``\\d`` as RE2's ``\\p{Nd}``: it must hold every such character
    (a digit RE2 did not know would skip a scan that finds something)."""
    digit = re2.compile(rb"^" + base._RE2_D + rb"$")
    pydigit = re.compile(r"\d")
    missing = [
        hex(c)
        for c in range(0x110000)
        if not 0xD800 <= c <= 0xDFFF and pydigit.match(chr(c)) and not digit.search(chr(c).encode())
    ]
    assert missing == []
    az = re2.compile(rb"^" + base._RE2_AZ + rb"$")
    for ch in "azAZ\u0130\u0131\u017f\u212a":
        assert az.search(ch.encode())


def test_luhn_and_ipv4_fast_paths_agree_with_the_slow_ones() -> None:
    rng = random.Random(9)
    for _ in range(20000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19)))
        assert base._luhn(digits) == _luhn(digits), digits
    octets = ["0", "00", "01", "1", "9", "10", "99", "100", "199", "255", "256", "300", "999", "007"]
    for _ in range(20000):
        found = ".".join(rng.choice(octets) for _ in range(4))
        assert base._ipv4(found) == _ip(found), found
    assert base._ipv4("\u0661.2.3.4") is None


# --------------------------------------------------------------------------- tokens


def test_tokens_equal_the_reference_on_every_benchmark_format(corpus: list[str]) -> None:
    for text in corpus:
        assert tokenize(text) == reference_tokenize(text)
        assert token_string(text) == " ".join(reference_tokenize(text))


@settings(max_examples=400, deadline=None)
@given(pieces_text)
def test_tokens_equal_the_reference_on_generated_pieces(text: str) -> None:
    assert tokenize(text) == reference_tokenize(text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_tokens_equal_the_reference_on_any_text(text: str) -> None:
    assert tokenize(text) == reference_tokenize(text)


ascii_text = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(max_codepoint=127), max_size=30),
        st.sampled_from(["A" * MAX_TOKEN_CHARS, "b9" * MAX_TOKEN_CHARS, "x_y", "\x1c\x1f\x0b", "ÀÉ", "客户"]),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(ascii_text)
def test_token_string_equals_the_reference_on_ascii_and_nearly_ascii_text(text: str) -> None:
    """ASCII text takes the byte-table path (token_string) and the translate path (tokenize)."""
    assert tokenize(text) == reference_tokenize(text)
    assert token_string(text) == " ".join(reference_tokenize(text))


def test_token_string_drops_long_words_on_the_ascii_path() -> None:
    long, edge = "Q" * (MAX_TOKEN_CHARS + 1), "q" * MAX_TOKEN_CHARS
    text = f"{long} Keep_this {edge},{long}.end"
    assert token_string(text) == f"keep this {edge} end" == " ".join(reference_tokenize(text))


def test_intl_phone_fast_path_equals_libphonenumber_parse() -> None:
    """`_intl_phone_fast` takes libphonenumber's steps for "+digits": same answer as parse on numbers of
    every country code, with national prefixes, leading zeros and wrong lengths."""
    assert base._PN is not None
    rng = random.Random(21)
    codes = [str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    checked = possible = 0
    while checked < 30000:
        shape = rng.random()
        if shape < 0.6:
            digits = rng.choice(codes) + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 14)))
        elif shape < 0.8:
            digits = rng.choice(codes) + rng.choice(["0", "00", "1", "8", "9", "06", "0000"])
            digits += "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 12)))
        else:
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 17)))
        if not 7 <= len(digits) <= 15:
            continue
        checked += 1
        expected = _intl_phone(digits)  # the reference: phonenumbers.parse + is_possible_number
        assert base._intl_phone_fast(digits) == expected, digits
        assert base._intl_phone(digits) == expected, digits
        possible += bool(expected)
    assert possible > 5000


def test_ipv6_presence_test_skips_only_text_without_an_address() -> None:
    """Timestamps and ratios ("12:34:56", "a:b:c") skip the IPv6 scan; every written form of an address
    (with "::", eight groups, mapped IPv4, scoped) still finds the same terms."""
    rng = random.Random(8)
    pieces = [*"0123456789abcdefABCDEF:.% \n", "::", "fe80", "ffff", "1:2:3:4:5:6:7:8", "10.0.0.1", "%eth0"]
    for _ in range(6000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        assert base.extract_selectors(text) == reference_extract_selectors(text), text
    for text in ["12:34:56 a:b:c:d:e:f:0", "2024-05-01T10:00:00Z 10:11:12:13:14:15:16"]:
        assert not base._HAS_IPV6(text.encode())
        assert base.extract_selectors(text) == reference_extract_selectors(text)


def test_a_crawl_batch_of_600_postings_of_10_kb_is_one_segment(tmp_path: Path) -> None:
    """A batch as a crawl now cuts it (10 s of postings) fits the small writer's heap: one segment per
    commit, so tantivy's merges (of eight segments) do not come twice as often."""
    from datetime import UTC, datetime

    from core.search import SearchDoc, SearchQuery
    from core.search.tantivy_backend import TantivyBackend

    bench = _bench_detect()
    rng = random.Random(6)
    fetched = datetime(2024, 3, 1, tzinfo=UTC)
    docs = []
    for i in range(1, 601):
        fmt = rng.choice(list(bench.MIX))
        text = bench.posting_text(fmt, rng, 10_000, [])
        docs.append(
            SearchDoc(i, f"https://paste.example/{i}", "pastes", "pastebin", None, None, None, fetched, text)
        )
    backend = TantivyBackend(tmp_path / "search")
    assert backend.index(docs) == 600
    backend._index.reload()
    assert backend._index.searcher().num_segments == 1
    assert backend.search(SearchQuery("the")).total > 0


def test_selectors_of_ascii_text_take_the_ascii_scans_and_equal_the_reference() -> None:
    ascii_pieces = [p for p in PIECES if p.isascii()]
    rng = random.Random(14)
    for _ in range(3000):
        text = "".join(rng.choice(ascii_pieces) for _ in range(rng.randint(1, 90)))
        assert text.isascii()
        assert base.extract_selectors(text) == reference_extract_selectors(text), text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_selectors_equal_the_reference_on_any_ascii_text(text: str) -> None:
    assert base.extract_selectors(text) == reference_extract_selectors(text)
