"""Identifier writing variants: every way people write a cn_id, IBAN, card, phone or SSN is found, with the
canonical value the company registered, by extract.py and (identically) by the native scanner.

Why: a leak is found only if the value in the posting canonicalises to the registered one; dumps write the
same number grouped (6-8-4, fours), with spaces, hyphens, dots or several of them, in full-width forms
(`１３８…`, `Ｘ`), in lower case. Numbers are generated valid (checksums computed here, independently of
core.canonical), written in every variant, and then (a) found by the Python reference with the right
canonical value, (b) the native scanner gives the same (hash, line) pairs, (c) the same writings of
numbers with a wrong checksum are not found. Published test vectors (ISO 13616 registry examples, the
GB 11643 example id, card networks' test numbers) are checked as well.
"""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pipelines_fastscan import assert_same  # the differential check (tests/pipelines is on the path)

from core.canonical import IBAN_LENGTHS, canonicalize
from pipelines.detection import fastscan
from pipelines.detection.extract import extract_candidates, narrow_forms

# --------------------------------------------------------------------------- checksums (independent)

_CN_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def cn_check(first17: str) -> str:
    return "10X98765432"[sum(w * int(c) for w, c in zip(_CN_WEIGHTS, first17, strict=True)) % 11]


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_digit(number[:-1]) == number[-1]


def iban_check(country: str, bban: str) -> str:
    value = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{98 - value % 97:02d}"


def iban_valid(iban: str) -> bool:
    return int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


# --------------------------------------------------------------------------- valid numbers

_PROVINCES = (11, 12, 13, 31, 32, 33, 44, 45, 50, 51, 65, 81)


@st.composite
def cn_ids(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(_PROVINCES))
    area = draw(st.integers(0, 9999))
    year = draw(st.integers(1930, 2010))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    seq = draw(st.integers(0, 999))
    first17 = f"{province}{area:04d}{year}{month:02d}{day:02d}{seq:03d}"
    return first17 + cn_check(first17)


_IBAN_COUNTRIES = ("GB", "DE", "FR", "NL", "BE", "CH", "NO", "ES", "IT", "PL", "MT", "SE")


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(_IBAN_COUNTRIES))
    size = IBAN_LENGTHS[country] - 4
    letters = draw(st.integers(0, min(4, size)))  # a bank code in letters, as GB, NL, MT write it
    bban = draw(st.text(string.ascii_uppercase, min_size=letters, max_size=letters)) + draw(
        st.text(string.digits, min_size=size - letters, max_size=size - letters)
    )
    return country + iban_check(country, bban) + bban


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, size = draw(
        st.sampled_from((("4", 16), ("51", 16), ("55", 16), ("62", 16), ("62", 19), ("4", 13), ("62", 17)))
    )
    body = prefix + draw(
        st.text(string.digits, min_size=size - 1 - len(prefix), max_size=size - 1 - len(prefix))
    )
    return body + luhn_digit(body)


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    return f"{area:03d}{draw(st.integers(1, 99)):02d}{draw(st.integers(1, 9999)):04d}"


@st.composite
def cn_mobiles(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(("138", "139", "150", "186", "177", "199", "136", "158")))
    return prefix + draw(st.text(string.digits, min_size=8, max_size=8))


# --------------------------------------------------------------------------- writings

SEPARATORS = (" ", "-", ".", "  ", "   ", " - ", " . ", "\u3000", "\u00a0")
_FULL = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


def full_width(text: str) -> str:
    """Every ASCII letter and digit (and punctuation) in its full-width form, spaces ideographic."""
    return "".join(chr(_FULL.get(ord(c), ord(c))) if c != " " else "\u3000" for c in text)


def grouped(value: str, sizes: tuple[int, ...], sep: str) -> str:
    out, pos = [], 0
    for size in sizes:
        out.append(value[pos : pos + size])
        pos += size
    if pos < len(value):
        out.append(value[pos:])
    return sep.join(part for part in out if part)


def fours(value: str) -> tuple[int, ...]:
    return (4,) * ((len(value) + 3) // 4)


def writings(field_type: str, value: str) -> list[str]:
    """Every writing of `value` this issue asks for (the plain form first; an SSN is never nine bare digits)."""
    forms = [] if field_type == "ssn" else [value]
    if field_type == "cn_id":
        shapes: list[tuple[int, ...]] = [(6, 8, 4), (6, 4, 4, 4)]
        forms += [value.lower(), value[:-1] + full_width(value[-1])]
    elif field_type == "iban":
        shapes = [fours(value)]
        forms += [value.lower(), value[:2] + value[2:].lower(), value.title()]
    elif field_type == "card":
        shapes = [fours(value)]
        if len(value) == 19:
            shapes.append((6, 13))
    elif field_type == "ssn":
        shapes = [(3, 2, 4)]
    else:  # phone: a CN mobile
        shapes = [(3, 4, 4)]
        forms += ["+86" + value, "0086" + value, "+86 " + value, "(+86)" + value, "(+86) " + value]
        forms += [f"+86 {grouped(value, (3, 4, 4), ' ')}", f"+86-{grouped(value, (3, 4, 4), '-')}"]
        forms += [f"(+86) {grouped(value, (3, 4, 4), ' ')}", f"+86.{grouped(value, (3, 4, 4), '.')}"]
        # several spaces between the groups, or after the country code
        forms += [f"+86 {grouped(value, (3, 4, 4), '  ')}", f"+86  {grouped(value, (3, 4, 4), ' ')}"]
        forms += [f"+86   {grouped(value, (3, 4, 4), '   ')}", f"0086  {grouped(value, (3, 4, 4), '  ')}"]
    for shape in shapes:
        for sep in SEPARATORS:
            if field_type == "phone" and sep == " . ":
                continue  # a dot with spaces around it is not a phone writing
            if shape == (6, 13) and sep not in (" ", "-", "\u3000", "\u00a0"):
                continue  # 6-13 is read with a space or a hyphen only
            forms.append(grouped(value, shape, sep))
            if field_type in ("iban", "cn_id"):
                forms.append(grouped(value.lower(), shape, sep))
    forms += [full_width(f) for f in list(forms)[:6]]
    return list(dict.fromkeys(forms))


CONTEXTS = (
    "{}",
    "x {} y",
    "号码：{}，谢谢",
    "name,{},2024",
    "id={} status=ok",
    "'{}'",
    "【{}】",
    "身份证 {}\t电话",
)


def regions_for(field_type: str) -> tuple[str, ...]:
    return ("CN",) if field_type == "phone" else ("CN", "US")


def found(text: str, field_type: str, regions: tuple[str, ...]) -> set[str]:
    return {c.canonical for c in extract_candidates(text, regions) if c.field_type == field_type}


def registered(field_type: str, value: str) -> str:
    canonical = canonicalize(field_type, value, "CN" if field_type == "phone" else None)
    assert canonical is not None, (field_type, value)
    return canonical


# --------------------------------------------------------------------------- (a) + (b)


def assert_found_everywhere(field_type: str, value: str, context_index: int) -> None:
    expected = registered(field_type, value)
    regions = regions_for(field_type)
    context = CONTEXTS[context_index % len(CONTEXTS)]
    lines = []
    for written in writings(field_type, value):
        # the canonical form of every writing is the registered value (the company side meets it)
        assert canonicalize(field_type, written, "CN" if field_type == "phone" else None) == expected, written
        line = context.format(written)
        got = found(line, field_type, regions)
        assert expected in got, (field_type, written, line, got)
        lines.append(line)
    if fastscan.native_available():
        assert_same("\n".join(lines), regions)


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(value=cn_ids(), context=st.integers(0, 100))
def test_cn_id_writings_are_found(value: str, context: int) -> None:
    assert_found_everywhere("cn_id", value, context)


@_SETTINGS
@given(value=ibans(), context=st.integers(0, 100))
def test_iban_writings_are_found(value: str, context: int) -> None:
    assert_found_everywhere("iban", value, context)


@_SETTINGS
@given(value=cards(), context=st.integers(0, 100))
def test_card_writings_are_found(value: str, context: int) -> None:
    assert_found_everywhere("card", value, context)


@_SETTINGS
@given(value=ssns(), context=st.integers(0, 100))
def test_ssn_writings_are_found(value: str, context: int) -> None:
    assert_found_everywhere("ssn", value, context)


@_SETTINGS
@given(value=cn_mobiles(), context=st.integers(0, 100))
def test_phone_writings_are_found(value: str, context: int) -> None:
    assert_found_everywhere("phone", value, context)


# --------------------------------------------------------------------------- (c) wrong checksums


def assert_never_found(field_type: str, bad: str, shown_as: str) -> None:
    """No writing of `bad` is found as `field_type` with its own digits (a shorter card inside may be)."""
    regions = regions_for(field_type)
    compact = bad.upper()
    lines = []
    for written in writings(field_type, bad):
        for context in CONTEXTS[:4]:
            line = context.format(written)
            got = found(line, field_type, regions)
            assert compact not in got and shown_as not in got, (field_type, written, got)
            lines.append(line)
    if fastscan.native_available():
        assert_same("\n".join(lines), regions)


@_SETTINGS
@given(value=cn_ids(), delta=st.integers(1, 10))
def test_cn_id_with_wrong_check_character_is_not_found(value: str, delta: int) -> None:
    check = "0123456789X"
    bad = value[:-1] + check[(check.index(value[-1]) + delta) % 11]
    assert_never_found("cn_id", bad, value)


@_SETTINGS
@given(value=ibans(), delta=st.integers(1, 96))
def test_iban_with_wrong_check_digits_is_not_found(value: str, delta: int) -> None:
    bad = value[:2] + f"{(int(value[2:4]) + delta) % 100:02d}" + value[4:]
    if iban_valid(bad):  # 00/01/99 collide mod 97
        return
    assert_never_found("iban", bad, value)


@_SETTINGS
@given(value=cards(), delta=st.integers(1, 9))
def test_card_with_wrong_luhn_digit_is_not_found(value: str, delta: int) -> None:
    bad = value[:-1] + str((int(value[-1]) + delta) % 10)
    assert_never_found("card", bad, value)


@_SETTINGS
@given(value=ssns(), area=st.sampled_from(("000", "666", "900", "987")))
def test_ssn_in_never_issued_ranges_is_not_found(value: str, area: str) -> None:
    assert_never_found("ssn", area + value[3:], value)


@_SETTINGS
@given(value=cn_mobiles(), prefix=st.sampled_from(("100", "101", "110", "120", "127")))
def test_phone_outside_mobile_ranges_is_not_found(value: str, prefix: str) -> None:
    bad = prefix + value[3:]
    for written in writings("phone", bad):
        assert "+86" + bad not in found(written, "phone", ("CN",)), written


# --------------------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    "line",
    [
        "110105 19491231-002X",  # mixed separators
        "110105 1949123 1002X",  # 6-7-5: not the format's groups
        "110105..19491231..002X",  # two dots: not a separator
        "110105 - - 19491231 - - 002X",
        "1101 0519 4912 3100 2X",  # groups of four: not a cn_id shape
        "GB82 WEST 1234 5698 7654 3",  # one character short
        "GB82-WEST-1234-5698 7654-32",
        "GB8 2WES T123 4569 8765 432",  # not grouped from the start
        "gb82west1234569876543200",  # unbroken but too long
        "xgb82west12345698765432",  # part of a longer word
        "4111.1111.1111 1111",
        "4111..1111..1111..1111",
        "1 123 45 6789",  # SSN inside a longer number
        "123 45 6789 1",
        "10.123.45.6789",
        "123 456 789",
    ],
)
def test_inconsistent_or_foreign_groupings_are_not_found(line: str) -> None:
    valid = {"cn_id": "11010519491231002X", "iban": "GB82WEST12345698765432", "card": "4111111111111111"}
    got = {(c.field_type, c.canonical) for c in extract_candidates(line, ("CN", "US"))}
    assert not {(t, v) for t, v in valid.items()} & got, got
    assert not any(t == "ssn" for t, _ in got), got
    if fastscan.native_available():
        assert_same(line, ("CN", "US"))


# --------------------------------------------------------------------------- published test vectors

# ISO 13616 / SWIFT IBAN registry examples (valid), and the same with one character changed (invalid).
IBAN_VECTORS = [
    "GB82WEST12345698765432",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "CH9300762011623852957",
    "NO9386011117947",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
    "MT84MALT011000012345MTLCAST001S",
    "PL61109010140000071219812874",
    "SE4550000000058398257466",
]
IBAN_INVALID = [
    "GB82WEST12345698765431",
    "DE89370400440532013001",
    "NL91ABNA0417164301",
    "GB00WEST12345698765432",
]
# GB 11643-1999's example id, and ids made of published example birth codes with the check computed.
CN_ID_VECTORS = ["11010519491231002X", "110105194912310021", "440308199901010014"]
# Card networks' published test numbers: Visa, Mastercard, Amex (15), Discover, Diners (14), UnionPay 16 and 19.
CARD_VECTORS = [
    "4111111111111111",
    "4012888888881881",
    "5555555555554444",
    "5105105105105100",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "30569309025904",
    "6200000000000005",
    "6205500000000000004",
]


def _vector_lines(field_type: str, value: str) -> list[str]:
    forms = writings(field_type, value)
    if field_type == "card" and len(value) == 15:
        forms += [grouped(value, (4, 6, 5), sep) for sep in SEPARATORS]
    if field_type == "card" and len(value) == 14:
        forms += [grouped(value, (4, 6, 4), sep) for sep in SEPARATORS]
    return [f"value: {f} end" for f in forms]


@pytest.mark.parametrize("value", IBAN_VECTORS)
def test_iban_registry_examples_in_every_writing(value: str) -> None:
    assert iban_valid(value) and len(value) == IBAN_LENGTHS[value[:2]]
    lines = _vector_lines("iban", value)
    for line in lines:
        assert value in found(line, "iban", ()), line
    if fastscan.native_available():
        assert_same("\n".join(lines), ())


@pytest.mark.parametrize("value", IBAN_INVALID)
def test_iban_invalid_vectors_are_never_found(value: str) -> None:
    assert not iban_valid(value)
    for line in _vector_lines("iban", value):
        assert found(line, "iban", ()) == set(), line


@pytest.mark.parametrize("value", CN_ID_VECTORS)
def test_cn_id_vectors_in_every_writing(value: str) -> None:
    expected = value if cn_check(value[:17]) == value[17] else None
    for line in _vector_lines("cn_id", value):
        got = found(line, "cn_id", ())
        assert got == ({expected} if expected else set()), line


@pytest.mark.parametrize("value", CARD_VECTORS)
def test_card_network_test_numbers_in_every_writing(value: str) -> None:
    assert luhn_valid(value)
    lines = _vector_lines("card", value)
    for line in lines:
        assert value in found(line, "card", ()), line
    if fastscan.native_available():
        assert_same("\n".join(lines), ("US",))


def test_narrowing_maps_one_character_for_one() -> None:
    wide = full_width("GB82 WEST 1234") + "\u00a0\u2007\u202f"
    narrow = narrow_forms(wide)
    assert narrow == "GB82 WEST 1234   " and len(narrow) == len(wide)
    assert narrow_forms("张三 abc") == "张三 abc"


def test_raw_is_the_narrowed_writing() -> None:
    line = "身份证：" + full_width("110105 19491231 002X")
    raws = {c.raw for c in extract_candidates(line, ("CN",)) if c.field_type == "cn_id"}
    assert raws == {"110105 19491231 002X"}


def test_random_dump_of_all_variants_matches_native() -> None:
    """One text with every type in every writing on lines of mixed content (the differential view)."""
    if not fastscan.native_available():
        pytest.skip("native scanner not built")
    rng = random.Random(13)
    samples = {
        "cn_id": ["11010519491231002X", "44030419851105123" + cn_check("44030419851105123")],
        "iban": IBAN_VECTORS[:6],
        "card": CARD_VECTORS[:6],
        "ssn": ["123456789", "078051120"],
        "phone": ["13812345678", "15012345678"],
    }
    lines = []
    for field_type, values in samples.items():
        for value in values:
            for written in writings(field_type, value):
                other = rng.choice(["张三", "bob@example.com", "13912345678", "pw123", ""])
                lines.append(
                    rng.choice(CONTEXTS).format(written) + rng.choice([",", " ", "\t", "；"]) + other
                )
    for regions in (("CN",), ("CN", "US"), ()):
        assert_same("\n".join(lines), regions)


# --------------------------------------------------------------------------- (d) values wrapped over two lines

WRAP_SEPARATORS = (" ", "-", ".", "  ", " - ", "\u3000")
LINE_ENDS = ("\n", "\r\n", " \n", "  \r\n")
INDENTS = ("", "    ", "\t", "  \t")
FIRST_LINES = ("{}", "x {}", "号码：{}", "name,{}", "id={}", "卡号 {}")
SECOND_LINES = ("{}", "{} y", "{}，谢谢", "{},2024", "{} status=ok")


def group_shapes(field_type: str, value: str) -> list[tuple[int, ...]]:
    if field_type == "cn_id":
        return [(6, 8, 4), (6, 4, 4, 4)]
    if field_type == "card" and len(value) == 15:
        return [fours(value), (4, 6, 5)]
    if field_type == "card" and len(value) == 14:
        return [fours(value), (4, 6, 4)]
    return [fours(value)]


def split_groups(value: str, shape: tuple[int, ...]) -> list[str]:
    out, pos = [], 0
    for size in shape:
        if pos < len(value):
            out.append(value[pos : pos + size])
        pos += size
    return out


def wrapped_text(first: str, second: str, eol: str, indent: str, before: str, after: str) -> str:
    return before.format(first) + eol + indent + after.format(second)


def assert_wrapped_found(field_type: str, value: str, text: str, raw_first: str) -> None:
    """Found by extract.py on the line where it starts (the first), and the same by the native scanner."""
    expected = registered(field_type, value)
    regions = regions_for(field_type)
    lines = {(c.canonical, c.line) for c in extract_candidates(text, regions) if c.field_type == field_type}
    assert (expected, 1) in lines, (field_type, text, lines)
    if fastscan.native_available():
        assert_same(text, regions)
        listed = [c for c in fastscan.candidates_on_lines(text, {1}, regions) if c.canonical == expected]
        assert listed and listed[0].line == 1 and listed[0].raw.startswith(raw_first), (text, listed)


@st.composite
def grouped_wraps(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """(type, value, text, first piece): a valid value in groups, broken onto a second line at a group boundary."""
    field_type = draw(st.sampled_from(("cn_id", "iban", "card")))
    value = draw({"cn_id": cn_ids(), "iban": ibans(), "card": cards()}[field_type])
    if field_type == "iban" and draw(st.booleans()):
        value = value.lower()
    groups = split_groups(value, draw(st.sampled_from(group_shapes(field_type, value))))
    at = draw(st.integers(1, len(groups) - 1))
    sep = draw(st.sampled_from(WRAP_SEPARATORS))
    first, second = sep.join(groups[:at]), sep.join(groups[at:])
    if draw(st.booleans()):
        first, second = full_width(first), full_width(second)
    text = wrapped_text(
        first,
        second,
        draw(st.sampled_from(LINE_ENDS)),
        draw(st.sampled_from(INDENTS)),
        draw(st.sampled_from(FIRST_LINES)),
        draw(st.sampled_from(SECOND_LINES)),
    )
    return field_type, value, text, narrow_forms(first)


@st.composite
def unbroken_wraps(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """An unbroken cn_id split anywhere, or an IBAN split after its check digits, over two lines."""
    field_type = draw(st.sampled_from(("cn_id", "iban")))
    value = draw(cn_ids() if field_type == "cn_id" else ibans())
    at = draw(st.integers(1 if field_type == "cn_id" else 4, len(value) - 1))
    text = wrapped_text(
        value[:at],
        value[at:],
        draw(st.sampled_from(LINE_ENDS)),
        draw(st.sampled_from(INDENTS)),
        draw(st.sampled_from(FIRST_LINES)),
        draw(st.sampled_from(SECOND_LINES)),
    )
    return field_type, value, text, value[:at]


@_SETTINGS
@given(case=grouped_wraps())
def test_grouped_values_wrapped_at_a_group_boundary_are_found(case: tuple[str, str, str, str]) -> None:
    field_type, value, text, first = case
    assert_wrapped_found(field_type, value, text, first)


@_SETTINGS
@given(case=unbroken_wraps())
def test_unbroken_cn_ids_and_ibans_split_over_two_lines_are_found(case: tuple[str, str, str, str]) -> None:
    field_type, value, text, first = case
    assert_wrapped_found(field_type, value, text, first)


@pytest.mark.parametrize(
    ("text", "field_type", "canonical", "raw"),
    [
        ("GB82 WEST 1234\n5698 7654 32", "iban", "GB82WEST12345698765432", "GB82 WEST 1234\n5698 7654 32"),
        (
            "iban: gb82-west-1234-5698-7654\r\n    32 ok",
            "iban",
            "GB82WEST12345698765432",
            "gb82-west-1234-5698-7654\n32",
        ),
        ("4111 1111\n1111 1111", "card", "4111111111111111", "4111 1111\n1111 1111"),
        ("卡号 4111 1111\r\n\t1111 1111 有效", "card", "4111111111111111", "4111 1111\n1111 1111"),
        ("3782 822463\n10005", "card", "378282246310005", "3782 822463\n10005"),
        ("身份证 110105 19491231\n  002X", "cn_id", "11010519491231002X", "110105 19491231\n002X"),
        ("110105-1949\n1231-002x", "cn_id", "11010519491231002X", "110105-1949\n1231-002x"),
        ("id 11010519491231\n002X,ok", "cn_id", "11010519491231002X", "11010519491231\n002X"),
        ("iban GB82WEST1234569876\n5432", "iban", "GB82WEST12345698765432", "GB82WEST1234569876\n5432"),
    ],
)
def test_wrapped_examples_stand_on_their_first_line(
    text: str, field_type: str, canonical: str, raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = [
        (c.canonical, c.raw, c.line) for c in extract_candidates(text, ("CN",)) if c.field_type == field_type
    ]
    assert (canonical, raw, 1) in got, got
    assert not [g for g in got if g[2] == 2 and g[0] == canonical], got  # not on the second line as well
    if fastscan.native_available():
        assert_same(text, ("CN",))
        listed = [(c.canonical, c.raw, c.line) for c in fastscan.candidates_on_lines(text, {1}, ("CN",))]
        assert (canonical, raw, 1) in listed, listed
    # the listing without the native scanner (pure Python) reads the next line too
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    python_only = fastscan.HashedScanner(b"k" * 32, ("CN",))
    assert not python_only.native
    listed = [(c.canonical, c.raw, c.line) for c, _ in python_only.hashed_candidates(text, {1})]
    assert listed == [
        (c.canonical, c.raw, c.line) for c in extract_candidates(text, ("CN",)) if c.line == 1
    ], listed


WRAP_REFUSED = [
    # a value broken inside a group, not at a group boundary
    ("4111 11\n11 1111 1111", "card", "4111111111111111"),
    ("GB82 WEST 12\n34 5698 7654 32", "iban", "GB82WEST12345698765432"),
    ("110105 194912\n31 002X", "cn_id", "11010519491231002X"),
    # one separator throughout: the second line's separator differs from the first's
    ("4111-1111\n1111 1111", "card", "4111111111111111"),
    ("GB82-WEST-1234\n5698.7654.32", "iban", "GB82WEST12345698765432"),
    # an unbroken card is not joined: Luhn alone would glue one pair of numbers in ten
    ("41111111\n11111111", "card", "4111111111111111"),
    ("order 411111111111\n1111 paid", "card", "4111111111111111"),
    # an IBAN's country and check digits stay on the first line
    ("GB\n82WEST12345698765432", "iban", "GB82WEST12345698765432"),
    ("GB82W\nEST1234569876543", "iban", None),  # too short when joined
    # a cn_id of 17 or 19 characters when joined
    ("1101051949123\n1002", "cn_id", None),
    ("11010519491231\n002X1", "cn_id", "11010519491231002X"),
    # over three lines, or with a blank line between
    ("4111\n1111\n1111 1111", "card", "4111111111111111"),
    ("4111 1111\n\n1111 1111", "card", "4111111111111111"),
    # something else between the pieces
    ("4111 1111 ;\n1111 1111", "card", "4111111111111111"),
    ("4111 1111\n- 1111 1111", "card", "4111111111111111"),
]


@pytest.mark.parametrize(("text", "field_type", "canonical"), WRAP_REFUSED)
def test_wrongly_wrapped_values_are_not_joined(text: str, field_type: str, canonical: str | None) -> None:
    got = {(c.field_type, c.canonical) for c in extract_candidates(text, ("CN", "US"))}
    if canonical is not None:
        assert (field_type, canonical) not in got, got
    else:  # nothing of the type at all
        assert not [g for g in got if g[0] == field_type], got
    if fastscan.native_available():
        assert_same(text, ("CN", "US"))


@_SETTINGS
@given(first=st.text(string.digits, min_size=4, max_size=12), size=st.integers(12, 19))
def test_two_numbers_on_adjacent_lines_are_not_glued_into_a_card(first: str, size: int) -> None:
    """Unbroken digits on adjacent lines are never one card, even when their join passes Luhn."""
    if len(first) >= size:
        return
    second = "1" + "0" * (size - len(first) - 2)
    second += luhn_digit(first + second)
    assert luhn_valid(first + second)
    for before, after in (("{}", "{}"), ("total {}", "{} items"), ("a,{}", "{},b")):
        text = before.format(first) + "\n" + after.format(second)
        cards_found = {c.canonical for c in extract_candidates(text, ("US",)) if c.field_type == "card"}
        assert first + second not in cards_found, text
        if fastscan.native_available():
            assert_same(text, ("US",))


@_SETTINGS
@given(value=cards(), delta=st.integers(1, 9), at=st.integers(1, 3))
def test_wrapped_card_with_wrong_luhn_digit_is_not_found(value: str, delta: int, at: int) -> None:
    bad = value[:-1] + str((int(value[-1]) + delta) % 10)
    groups = split_groups(bad, fours(bad))
    at = min(at, len(groups) - 1)
    text = " ".join(groups[:at]) + "\n" + " ".join(groups[at:])
    got = {c.canonical for c in extract_candidates(text, ("US",)) if c.field_type == "card"}
    assert bad not in got and value not in got, (text, got)
    if fastscan.native_available():
        assert_same(text, ("US",))


@_SETTINGS
@given(value=ibans(), at=st.integers(4, 30), delta=st.integers(1, 96))
def test_wrapped_iban_with_wrong_check_digits_is_not_found(value: str, at: int, delta: int) -> None:
    bad = value[:2] + f"{(int(value[2:4]) + delta) % 100:02d}" + value[4:]
    if iban_valid(bad):
        return
    at = min(at, len(bad) - 1)
    groups = split_groups(bad, fours(bad))
    for text in (bad[:at] + "\n" + bad[at:], " ".join(groups[:2]) + "\n" + " ".join(groups[2:])):
        got = {c.canonical for c in extract_candidates(text, ()) if c.field_type == "iban"}
        assert not got & {bad, value}, (text, got)
        if fastscan.native_available():
            assert_same(text, ())


def test_wrapped_values_in_a_long_dump_match_native() -> None:
    """Wrapped values among ordinary lines, long lines (windows cut inside runs) and CRLF lines."""
    if not fastscan.native_available():
        pytest.skip("native scanner not built")
    rng = random.Random(1313)
    lines: list[str] = []
    values = ["4111111111111111", "GB82WEST12345698765432", "11010519491231002X", "6205500000000000004"]
    for i in range(300):
        value = rng.choice(values)
        groups = split_groups(value, (6, 8, 4) if len(value) == 18 else fours(value))
        at = rng.randrange(1, len(groups))
        sep = rng.choice(WRAP_SEPARATORS)
        pad = rng.choice(["", "x" * rng.randrange(60, 100), "1234 " * rng.randrange(10, 25), "ab1 " * 30])
        lines.append(pad + rng.choice([" ", ",", ""]) + sep.join(groups[:at]) + rng.choice(["", "\r", " "]))
        lines.append(
            rng.choice(INDENTS) + sep.join(groups[at:]) + rng.choice(["", " ok", "9" * 90, ",1 " * 40])
        )
        if i % 7 == 0:
            lines.append(value[: rng.randrange(1, len(value))] + "\n" + value[rng.randrange(1, len(value)) :])
    text = "\n".join(lines)
    for regions in (("CN",), ("CN", "US"), ()):
        assert_same(text, regions)
    from test_pipelines_fastscan import _candidates_on_lines_match

    count = text.count("\n") + 1
    _candidates_on_lines_match(text, set(range(1, count + 1)), ("CN",))
    _candidates_on_lines_match(text, set(range(1, count + 1, 3)), ("CN", "US"))
