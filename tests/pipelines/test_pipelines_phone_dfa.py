"""The phone automata only ever rule out numbers libphonenumber rejects (and match its patterns)."""

from __future__ import annotations

import hmac
import random
import re

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata

from core.phone_national import NUMBER_TYPES
from pipelines.detection import extract as ex
from pipelines.detection import fastscan, phone_dfa

KEY = bytes(range(32))
REGIONS = ("CN", "US", "GB", "DE", "IN", "FR", "BR")


@pytest.mark.parametrize("region", REGIONS)
def test_type_automaton_equals_the_patterns(region: str) -> None:
    auto = phone_dfa.region_automata(region)
    meta = PhoneMetadata.metadata_for_region(region)
    if auto is None:  # only where stripping the national prefix rewrites the number
        assert meta.national_prefix_transform_rule
        pytest.skip(f"{region} rewrites numbers: libphonenumber decides there")
    patterns = [
        re.compile(d.national_number_pattern)
        for member in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[meta.country_code]
        for kind in NUMBER_TYPES
        if (d := getattr(PhoneMetadata.metadata_for_region(member), kind, None)) is not None
        and d.national_number_pattern
    ]
    rng = random.Random(region)
    # random digit strings, and strings grown from pattern-accepted prefixes
    samples = ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17))) for _ in range(20_000)]
    for _ in range(5_000):
        example = phonenumbers.example_number_for_type(
            region, rng.choice(list(phonenumbers.PhoneNumberType.values()))
        )
        if example is not None:
            nsn = phonenumbers.national_significant_number(example)
            cut = rng.randint(0, len(nsn))
            samples.append(nsn[:cut] + "".join(rng.choice("0123456789") for _ in range(len(nsn) - cut)))
    for digits in samples:
        expected = any(p.fullmatch(digits) for p in patterns)
        assert auto.types.fullmatch(digits) == expected, (region, digits)


def test_national_prefix_lengths_cover_the_match() -> None:
    auto = phone_dfa.region_automata("CN")
    assert auto is not None and auto.national_prefix is not None
    pattern = re.compile(PhoneMetadata.metadata_for_region("CN").national_prefix_for_parsing)
    rng = random.Random(3)
    for _ in range(20_000):
        digits = "".join(rng.choice("0111279") for _ in range(rng.randint(1, 12)))
        m = pattern.match(digits)
        if m and m.end() > 0:
            assert m.end() in auto.national_prefix.prefix_lengths(digits), digits


def _reference_phones(text: str, regions: tuple[str, ...]) -> set[tuple[str, int]]:
    return {(c.canonical, c.line) for c in ex.extract_candidates(text, regions) if c.field_type == "phone"}


def _native_digests(text: str, regions: tuple[str, ...]) -> set[tuple[bytes, int]]:
    scan = fastscan.HashedScanner(KEY, regions).scan(text)
    return {(scan.digests[16 * int(i) : 16 * int(i) + 16], int(line)) for i, line in scan.pairs}


def _reference_digests(text: str, regions: tuple[str, ...]) -> set[tuple[bytes, int]]:
    return {
        (hmac.digest(KEY, f"{c.field_type}\x00{c.canonical}".encode(), "sha256")[:16], c.line)
        for c in ex.extract_candidates(text, regions)
    }


@pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")
@pytest.mark.parametrize("regions", [("CN",), ("US",), ("GB", "DE"), ("IN", "FR", "BR"), ()])
def test_digit_runs_read_as_extract_py_reads_them(regions: tuple[str, ...]) -> None:
    """Numbers of every length and shape, national and international, valid and not."""
    rng = random.Random(",".join(regions))
    lines = []
    for _ in range(3_000):
        n = rng.randint(6, 15)
        digits = "".join(rng.choice("0123456789") for _ in range(n))
        if rng.random() < 0.3:  # valid numbers of the regions, written nationally or internationally
            region = rng.choice(regions or REGIONS)
            kind = rng.choice(list(phonenumbers.PhoneNumberType.values()))
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                fmt = rng.choice(
                    (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                     phonenumbers.PhoneNumberFormat.E164)
                )  # fmt: skip
                digits = phonenumbers.format_number(example, fmt)
        prefix = rng.choice(("", "", "+", "00", "0", "+86 ", "86", "1", "011"))
        sep = rng.choice(("", " ", "-", "."))
        if sep and len(digits) > 6 and digits.isdigit():
            cut = rng.randint(2, len(digits) - 3)
            digits = digits[:cut] + sep + digits[cut:]
        lines.append(f"tel{rng.randint(0, 9)}: {prefix}{digits}")
    text = "\n".join(lines)
    assert _native_digests(text, regions) == _reference_digests(text, regions)
