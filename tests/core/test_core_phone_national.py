"""The metadata shortcut for plain national numbers answers exactly what libphonenumber's parse answers.

Why: `canonicalize("phone", ...)` is both sides' one normalisation (a company's registered phones and
the numbers found in postings); a shortcut that disagreed with libphonenumber on one number would hash
that number differently on the two sides and the leak would go unseen.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import canonical
from core.canonical import canonicalize
from core.phone_national import UNDECIDED, NationalRules, national_e164

#: Regions whose country code is theirs alone (the shortcut's domain), and a few it must leave alone.
SOLE_REGIONS = sorted(
    regions[0] for regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.values() if len(regions) == 1
)
SHARED = ["US", "CA", "GB", "RU", "KZ", "IT", "VA"]


def _parsed(text: str, region: str) -> str | None:
    """libphonenumber's answer, as `canonical._phone` computed it before the shortcut."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _agree(text: str, region: str) -> bool:
    """True if the shortcut answered (it must then agree); False if it left the number to parse."""
    got = national_e164(text, region)
    if got == UNDECIDED:
        return False
    assert got == _parsed(text, region), (text, region, got)
    return True


def _grouped(rng: random.Random, digits: str) -> str:
    out = [digits[0]]
    for d in digits[1:]:
        if rng.random() < 0.2:
            out.append(rng.choice(" .-"))
        out.append(d)
    return "".join(out)


def test_log_timestamps_and_chinese_numbers_agree_and_skip_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes a 20 MB scan met ~700 times (a log's `2024-05-13 08`, a Guangzhou number to
    libphonenumber) are answered from the metadata: exact, and without parse."""
    rng = random.Random(7)
    shapes = [
        f"{rng.randrange(2000, 2030)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} {rng.randrange(24):02d}"
        for _ in range(400)
    ]
    shapes += [f"{rng.randrange(2, 10)}{rng.randrange(10**9):09d}" for _ in range(400)]  # 10 digits
    shapes += ["2012345678", "2024-05-13 08", "755 8888 8888", "21-6234-5678", "400 810 8888", "95588"]
    left = [text for text in shapes if not _agree(text, "CN")]
    assert left and all(text.startswith("86") for text in left)  # 86...: parse may read a country code
    assert canonicalize("phone", "2024-05-13 08", region="CN") == "+862024051308"

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(canonical.phonenumbers, "parse", no_parse)
    for text in shapes[:50]:
        assert canonicalize("phone", text, region="cn") is not None


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("8613800138000", "CN"),  # starts with the country code: parse may strip it
        ("12593 138 0013 8000", "CN"),  # a carrier prefix (national_prefix_for_parsing)
        ("17951 2012345678", "CN"),
        ("010 6552 9988", "CN"),  # a trunk prefix
        ("+86 138 0013 8000", "CN"),
        ("810 44 20 7946 0958", "RU"),  # Russia's international prefix 810
        ("212 555 0100", "US"),  # +1 is shared by 25 regions
        ("20 7946 0958", "GB"),  # +44: GB, GG, IM, JE
        ("1", "CN"),
        ("123456789012345678", "DE"),
        ("12 34", "ZZ"),
        ("12a34", "CN"),
        ("12  34", "CN"),
    ],
)
def test_numbers_parse_could_rewrite_are_left_to_parse(text: str, region: str) -> None:
    assert national_e164(text, region) == UNDECIDED


def test_random_plain_numbers_agree_in_every_region() -> None:
    answered: dict[str, int] = {}
    for region in SOLE_REGIONS + SHARED:
        rng = random.Random(region)
        answered[region] = 0
        for _ in range(60):
            length = rng.randrange(2, 19)
            digits = str(rng.randrange(1, 10)) + "".join(rng.choice("0123456789") for _ in range(length - 1))
            answered[region] += _agree(_grouped(rng, digits), region)
    assert all(answered[region] == 0 for region in SHARED)  # a shared country code: always parsed
    # the shortcut is not silently off: it answers in nearly every region of its own
    # (not in "001", the non-geographic codes, nor where every number may start with a trunk prefix)
    sole = [region for region in SOLE_REGIONS if region != "001"]
    assert sum(answered[region] > 0 for region in sole) > 0.9 * len(sole)


@settings(max_examples=400, deadline=None)
@given(
    region=st.sampled_from(
        ["CN", "HK", "TW", "DE", "FR", "IN", "JP", "KR", "BR", "AU", "SG", "NL", "RU", "US"]
    ),
    groups=st.lists(st.text("0123456789", min_size=1, max_size=6), min_size=1, max_size=5),
    seps=st.lists(st.sampled_from(" .-"), min_size=4, max_size=4),
    prefix=st.sampled_from(["", "1", "2", "20", "86", "852", "49", "0", "9"]),
)
def test_hypothesis_numbers_agree(region: str, groups: list[str], seps: list[str], prefix: str) -> None:
    parts = [prefix, groups[0]]
    for group, sep in zip(groups[1:], seps, strict=False):
        parts += [sep, group]
    text = "".join(parts)
    _agree(text, region)
    # and through canonicalize, whichever way it went
    assert canonicalize("phone", text, region=region) == canonical_reference(text, region)


def canonical_reference(text: str, region: str) -> str | None:
    """canonicalize's answer with the shortcut off: the pre-shortcut reference."""
    original = canonical.national_e164
    canonical.national_e164 = lambda *_: UNDECIDED  # type: ignore[assignment]
    try:
        return canonicalize("phone", text, region=region)
    finally:
        canonical.national_e164 = original


#: A region the metadata does not have, whose descriptions tell libphonenumber's rules apart.
MADE_UP = NationalRules(
    "99",
    (),
    (frozenset({7, 8}), r"[2-9]\d{5,8}"),
    ((frozenset({8}), r"[2-5]\d{5,8}"), (frozenset(), r"[19]\d{6}")),
)


def test_validity_reads_lengths_then_patterns_general_first() -> None:
    """libphonenumber's rules on descriptions that today's metadata never tells apart (its type
    patterns imply their lengths and the general pattern), pinned on a made-up region."""
    from core.phone_national import _compile

    rules = _compile(MADE_UP)
    assert rules.valid("23456789")  # type 1, 8 digits
    assert not rules.valid("2345678")  # type 1's pattern, but not its length
    assert rules.valid("9123456")  # type 2 lists no lengths: the general ones hold
    assert not rules.valid("912345")  # type 2's pattern needs 7
    assert not rules.valid("1123456")  # type 2's pattern, but not the general one
