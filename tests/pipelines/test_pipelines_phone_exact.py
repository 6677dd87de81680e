"""The scanner answers plain national numbers itself, exactly as libphonenumber (through
core.phone_national) does, and leaves every other number to it.

Why: a fresh `scan` called back into Python for each distinct plain number of a dump (~800 in a 20 MB
scan, ~40 µs each with the first compiles). A native answer that differed from the Python one would hash
a found number differently from the registered one, and the leak would go unseen.
"""

from __future__ import annotations

import hmac
import random
from typing import Any

import phonenumbers
import pytest

from core.phone_national import NationalRules, _compile, national_e164, national_rules
from pipelines.detection import extract as ex
from pipelines.detection import fastscan, phone_dfa

_scanner = pytest.importorskip("pipelines.detection._scanner")
pytestmark = pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")

KEY = bytes(range(32))

#: Regions the scanner answers for (a calling code of their own, patterns the automata compile).
EXACT = sorted(
    r
    for regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.values()
    if len(regions) == 1 and (r := regions[0]) != "001"
    and (auto := phone_dfa.region_automata(r)) is not None and auto.national is not None
)  # fmt: skip


def _digests(text: str, regions: tuple[str, ...]) -> tuple[set[tuple[bytes, int]], dict[str, int]]:
    scanner = fastscan.HashedScanner(KEY, regions)
    scan = scanner.scan(text)
    assert scanner._native is not None
    found = {(scan.digests[16 * int(i) : 16 * int(i) + 16], int(line)) for i, line in scan.pairs}
    return found, scanner._native.stats()


def _reference(text: str, regions: tuple[str, ...]) -> set[tuple[bytes, int]]:
    return {
        (hmac.digest(KEY, f"{c.field_type}\x00{c.canonical}".encode(), "sha256")[:16], c.line)
        for c in ex.extract_candidates(text, regions)
    }


def _plain(rng: random.Random, digits: str) -> str:
    """The digits as people write them: groups of 2-4, one separator throughout (or none)."""
    separator = rng.choice(["", " ", "-", "."])
    groups, at = [], 0
    while at < len(digits):
        size = rng.randint(2, 4)
        groups.append(digits[at : at + size])
        at += size
    return separator.join(groups)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The numbers the scanners built after it ask libphonenumber about (through extract.py)."""
    calls: list[str] = []
    parsed = ex._parsed_phone

    def recording(raw: str, region: str | None) -> str | None:
        calls.append(raw)
        return parsed(raw, region)

    monkeypatch.setattr(ex, "_parsed_phone", recording)
    return calls


def _numbers(region: str, rng: random.Random, count: int) -> list[str]:
    """Plain numbers of the region's lengths (random, and its example numbers' digits), a few
    starting with its country code, and some shapes the scanner must leave to libphonenumber."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    lengths = sorted(meta.general_desc.possible_length or (8,))
    out = []
    for kind in phonenumbers.PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            nsn = phonenumbers.national_significant_number(example)
            if nsn[:1] != "0":
                out.append(_plain(rng, nsn))
                out.append(_plain(rng, nsn[:-1] + rng.choice("0123456789")))
    while len(out) < count:
        n = max(7, min(17, rng.choice(lengths) + rng.choice((0, 0, 0, -1, 1))))
        digits = rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(n - 1))
        if rng.random() < 0.1:
            digits = str(meta.country_code) + digits[len(str(meta.country_code)) :]
        out.append(_plain(rng, digits))
    out += ["2345/6789", "(234) 5678 90", "234 5678 90 x12"]
    return out


@pytest.mark.parametrize("region", EXACT)
def test_every_region_answers_as_the_reference(region: str) -> None:
    rng = random.Random(region)
    numbers = _numbers(region, rng, 120)
    text = "\n".join(f"tel: {number}" for number in numbers)
    found, stats = _digests(text, (region,))
    assert found == _reference(text, (region,))
    mask = fastscan._length_mask(region)
    eligible = [  # numbers the scanner reads as phones of the region, which the shortcut answers
        n
        for n in numbers
        if (digits := sum(c.isdigit() for c in n)) >= 7
        and mask >> digits & 1
        and national_e164(n, region) != "undecided"
    ]
    assert stats["phones_decided"] >= len(eligible) // 2, (stats, len(eligible))  # not left to Python


def test_a_chinese_dump_asks_python_about_no_plain_number(asked: list[str]) -> None:
    """Log timestamps and Chinese fixed lines, the shapes a 20 MB scan met ~800 times: only the numbers
    parse could rewrite (a trunk 0, the country code 86) reach libphonenumber."""
    rng = random.Random(5)
    lines = [
        f"{rng.randrange(2000, 2030)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} {rng.randrange(24):02d}"
        f":00:00 user{i} 755 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}"
        for i in range(300)
    ]
    text = "\n".join(lines)
    found, stats = _digests(text, ("CN",))
    assert stats["phones_decided"] > 300
    assert stats["phones_asked"] == len(asked) < 10
    assert all(raw.startswith(("0", "86")) for raw in asked), asked
    assert found == _reference(text, ("CN",))


#: A made-up region whose descriptions tell libphonenumber's rules apart (as in test_core_phone_national),
#: with an international prefix 11 and a national prefix 8 that parse would strip.
MADE_UP = NationalRules(
    "99",
    ("11", "8"),
    (frozenset({7, 8}), r"[2-9]\d{5,8}"),
    ((frozenset({8}), r"[2-5]\d{5,8}"), (frozenset(), r"[19]\d{6}")),
)


def _made_up_scanner(asked: list[str], national_prefix: str = "8") -> Any:
    def callback(raw: str, region: str | None) -> None:
        asked.append(raw)

    scanner = _scanner.Scanner(
        KEY, [("FR", sum(1 << n for n in range(4, 18)))], [False], bytes(10_000), callback, None
    )
    types = [pattern for _, pattern in MADE_UP.types]
    dfa = phone_dfa.compile_patterns(types, (MADE_UP.general[1],), marks=True)
    national = phone_dfa.national_tables(MADE_UP, len(types))
    idd, npfp = phone_dfa.compile_patterns(["11"]), phone_dfa.compile_patterns([national_prefix])
    automata = (99, dfa.table, dfa.accept, npfp.table, npfp.accept, idd.table, idd.accept)
    flags = bytes(1 if code == 99 else 0 for code in range(1000))
    scanner.set_automata(
        [(*automata, (dfa.masks, national.length_masks, national.general_bit, national.type_bits))], flags
    )
    return scanner


def test_the_rules_libphonenumber_reads_hold_natively() -> None:
    """Lengths before patterns, the general description first, any type; the rewriting prefixes and the
    country code left to the callback, as national_e164 leaves them to parse."""
    valid = _compile(MADE_UP).valid
    cases = {
        "23456789": True,  # type 1, 8 digits
        "2345678": False,  # type 1's pattern, not its length
        "9123456": True,  # type 2 lists no lengths: the general ones hold
        "91234567": False,  # type 2's pattern needs 7
        "1123456": None,  # the international prefix: left to libphonenumber
        "1234567": False,  # type 2's pattern, not the general one
        "8234567": None,  # the national prefix
        "99234567": None,  # the country code
        "2345-6789": True,
        "2 3 4 5 6 7 8 9": True,
        "2345/6789": None,  # not a plain shape
        "(2345) 6789": None,
    }
    for number, expected in cases.items():
        digits = "".join(c for c in number if c.isdigit())
        if expected is not None:
            assert valid(digits) == expected, number
        asked: list[str] = []
        scanner = _made_up_scanner(asked)
        digests, *_ = scanner.scan(f"tel: {number}")
        e164 = hmac.digest(KEY, f"phone\x00+99{digits}".encode(), "sha256")[:16]
        present = any(digests[i : i + 16] == e164 for i in range(0, len(digests), 16))
        if expected is None:
            assert asked == [number], number  # left to the callback (which found nothing)
            assert not present
        else:
            assert asked == [], number
            assert present == expected, number


def test_a_prefix_that_can_match_nothing_leaves_every_number_to_libphonenumber() -> None:
    """re.match of such a prefix pattern succeeds on any number (national_e164 then does not answer)."""
    asked: list[str] = []
    scanner = _made_up_scanner(asked, national_prefix="(?:8)?")
    scanner.scan("tel: 23456789\ntel: 9123456")
    assert asked == ["23456789", "9123456"]


def test_regions_without_a_code_of_their_own_have_no_exact_test() -> None:
    for region in ("US", "CA", "GB", "RU", "IT"):
        auto = phone_dfa.region_automata(region)
        assert auto is None or auto.national is None
        assert national_rules(region) is None


def test_malformed_national_tables_are_refused() -> None:
    scanner = _scanner.Scanner(KEY, [("FR", 1 << 9)], [False], bytes(10_000), None, None)
    auto = phone_dfa.region_automata("FR")
    assert auto is not None and auto.national is not None
    base = (33, auto.types.table, auto.types.accept, None, None, None, None)
    flags = bytes(1000)
    good = (auto.types.masks, auto.national.length_masks, auto.national.general_bit, auto.national.type_bits)
    scanner.set_automata([(*base, good)], flags)
    for bad in (
        (auto.types.masks[:-2], *good[1:]),
        (good[0], good[1][:-2], *good[2:]),
        (*good[:2], 1 << 16, good[3]),
        ("masks", *good[1:]),
        good[:3],
    ):
        with pytest.raises(ValueError, match="malformed"):
            scanner.set_automata([(*base, bad)], flags)


def test_the_length_table_is_this_releases_metadata() -> None:
    """Made again when phonenumbers moves (the table is for one release; another gets no bounds)."""
    from pipelines.detection import phone_lengths
    from pipelines.detection.phone_lengths_table import MIN_NSN, PHONENUMBERS_VERSION

    assert phonenumbers.__version__ == PHONENUMBERS_VERSION, "run python -m pipelines.detection.phone_lengths"
    assert phone_lengths.compute() == MIN_NSN
    table = phone_lengths.min_nsn()
    assert table[86] == MIN_NSN[86] > 0 and table[1] == MIN_NSN[1] > 0


def test_another_release_gets_no_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.detection import phone_lengths

    monkeypatch.setattr(phone_lengths.phonenumbers, "__version__", "0.0.0")
    phone_lengths.min_nsn.cache_clear()
    try:
        assert phone_lengths.min_nsn() == bytes(1000)
    finally:
        monkeypatch.undo()
        phone_lengths.min_nsn.cache_clear()


def _international(rng: random.Random) -> str:
    code = rng.choice([1, 7, 20, 31, 33, 39, 44, 49, 55, 61, 81, 86, 91, 93, 236, 355, 800, 882, 979])
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 13)))
    return _plain(rng, f"{code}{digits}")


def test_short_international_numbers_are_ruled_out_as_libphonenumber_finds_them(asked: list[str]) -> None:
    """`+` and a few digits (code, logs) never reach libphonenumber; every number reads as before."""
    rng = random.Random(11)
    numbers = [_international(rng) for _ in range(1500)]
    numbers += ["+318113", "+14 1023", "+93 0159", "+1 800 FLOWERS", "+1-800-356-9377"]
    # each beside another number: a field with fewer than 7 digits in all is never read as a phone
    lines = [
        f"id {rng.randrange(10**6, 10**7)} tel {n if n.startswith('+') else rng.choice(['+', '00']) + n}"
        for n in numbers
    ]
    text = "\n".join(lines)
    found, _ = _digests(text, ("CN", "DE"))
    written = [line.rsplit(" ", 1)[1] for line in lines]
    assert sum(map(_too_short, written)) > 200  # the rule has work here
    assert [n for n in asked if _too_short(n)] == []
    assert found == _reference(text, ("CN", "DE"))


def _too_short(raw: str) -> bool:
    """An international number with fewer digits after its calling code than the table's bound."""
    from pipelines.detection.phone_lengths_table import MIN_NSN

    if not raw.startswith(("+", "00")) or any(c.isalpha() for c in raw):
        return False
    digits = "".join(c for c in raw if c.isdigit())[0 if raw.startswith("+") else 2 :]
    for size in (1, 2, 3):
        if int(digits[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return len(digits) - size < MIN_NSN[int(digits[:size])]
    return False
