"""Canonical forms: one normalisation per type, identical at hashing and at matching time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import (
    CORROBORATING,
    FIELD_TYPES,
    IDENTIFYING,
    MAX_VALUE_CHARS,
    UnknownFieldType,
    _unicode_name,
    canonicalize,
    canonicalize_folded,
    fold,
    name_from_folded,
)
from core.errors import BadInput

# --------------------------------------------------------------------------- independent helpers


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit (written here independently of core.canonical)."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def cn_id_complete(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return first17 + "10X98765432"[sum(w * int(c) for w, c in zip(weights, first17, strict=True)) % 11]


UNIONPAY_16 = luhn_complete("621234567890123")
UNIONPAY_19 = luhn_complete("621700123456789012")
CN_ID = cn_id_complete("11010519491231002")


def test_helpers_agree_with_published_examples() -> None:
    assert luhn_complete("411111111111111") == "4111111111111111"
    assert CN_ID == "11010519491231002X"  # the well-known sample id


# --------------------------------------------------------------------------- catalogue


def test_type_catalogue_is_partitioned() -> None:
    assert set(FIELD_TYPES) == IDENTIFYING | CORROBORATING
    assert not IDENTIFYING & CORROBORATING
    for required in ("email", "phone", "card", "iban", "cn_id", "ssn", "username", "api_key"):
        assert required in IDENTIFYING
    for required in ("name", "dob", "text"):
        assert required in CORROBORATING


def test_unknown_type_is_bad_input() -> None:
    with pytest.raises(UnknownFieldType) as info:
        canonicalize("mail", "a@b.co")
    assert isinstance(info.value, BadInput)
    assert "mail" in str(info.value)


@pytest.mark.parametrize("field_type", FIELD_TYPES)
def test_oversized_values_are_rejected(field_type: str) -> None:
    assert canonicalize(field_type, "1" * (MAX_VALUE_CHARS + 1)) is None
    assert canonicalize(field_type, "a" * 50_000) is None


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+86 138 0013 8000", None),
        ("+86 138 0013 8000", "US"),
        ("0086 13800138000", None),
        ("0086 13800138000", "CN"),
        ("13800138000", "CN"),
        ("138-0013-8000", "cn"),
        ("138.0013.8000", "CN"),
        ("+86 (0) 138 0013 8000", None),
        ("+8613800138000", None),
        ("１３８００１３８０００", "CN"),  # full-width digits, as typed on Chinese keyboards
    ],
)
def test_chinese_mobile_forms_meet(raw: str, region: str | None) -> None:
    assert canonicalize("phone", raw, region) == "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("+44 20 7946 0958", "DE", "+442079460958"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("+1 650.253.0000", None, "+16502530000"),
        ("650-253-0000 ext. 12", "US", "+16502530000"),
        ("030 901820", "DE", "+4930901820"),
        ("+49 (0)30 901820", None, "+4930901820"),
        ("0049 30 901820", None, "+4930901820"),
        ("+49 1512 3456789", None, "+4915123456789"),
    ],
)
def test_gb_us_de_forms(raw: str, region: str | None, expected: str) -> None:
    assert canonicalize("phone", raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("1380013800", "CN"),  # a digit missing
        ("+86 138 0013 800", None),
        ("13800138000", None),  # national number without a region to read it in
        ("call 13800138000", "CN"),  # not a phone value
        ("", "CN"),
        ("+", None),
        ("123", "US"),
        ("13800138000", "ZZ"),
    ],
)
def test_invalid_phones(raw: str, region: str | None) -> None:
    assert canonicalize("phone", raw, region) is None


# --------------------------------------------------------------------------- card, iban, cn_id, ssn


def test_cards() -> None:
    assert canonicalize("card", "4111 1111 1111 1111") == "4111111111111111"
    assert canonicalize("card", "4111-1111-1111-1111") == "4111111111111111"
    assert canonicalize("card", "4111 1111 1111 1112") is None  # one digit changed
    assert canonicalize("card", UNIONPAY_16) == UNIONPAY_16
    assert canonicalize("card", UNIONPAY_19) == UNIONPAY_19
    assert len(UNIONPAY_16) == 16 and len(UNIONPAY_19) == 19
    changed = UNIONPAY_19[:-3] + str((int(UNIONPAY_19[-3]) + 1) % 10) + UNIONPAY_19[-2:]
    assert canonicalize("card", changed) is None
    assert canonicalize("card", luhn_complete("4111111111")) is None  # 11 digits: below the minimum
    assert canonicalize("card", luhn_complete("41111111111")) == "411111111117"  # 12 digits (Maestro)
    assert canonicalize("card", luhn_complete("4" * 19)) is None  # 20 digits
    assert canonicalize("card", "4111 1111 1111 111a") is None


def test_ibans() -> None:
    assert canonicalize("iban", "GB82 WEST 1234 5698 7654 32") == "GB82WEST12345698765432"
    assert canonicalize("iban", "gb82west12345698765432") == "GB82WEST12345698765432"
    assert canonicalize("iban", "GB82 WEST 1234 5698 7654 33") is None  # one digit changed
    assert canonicalize("iban", "DE89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert canonicalize("iban", "DE89 3704 0044 0532 0130 0") is None  # registered length is 22
    assert canonicalize("iban", "GB82") is None


def test_cn_ids() -> None:
    assert canonicalize("cn_id", CN_ID) == CN_ID
    assert canonicalize("cn_id", CN_ID.lower()) == CN_ID  # x upper-cased
    assert canonicalize("cn_id", CN_ID[:-1] + "1") is None  # wrong check character
    other = cn_id_complete("44030419851105123")
    assert canonicalize("cn_id", other) == other
    assert canonicalize("cn_id", cn_id_complete("11010519491331002")) is None  # month 13
    assert canonicalize("cn_id", cn_id_complete("99010519491231002")) is None  # no province 99
    assert canonicalize("cn_id", CN_ID[:17]) is None


@pytest.mark.parametrize("bad", ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"])
def test_ssn_never_issued_ranges(bad: str) -> None:
    assert canonicalize("ssn", bad) is None


def test_ssn() -> None:
    assert canonicalize("ssn", "123-45-6789") == "123456789"
    assert canonicalize("ssn", "123 45 6789") == "123456789"
    assert canonicalize("ssn", "12345678") is None


_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)} | {0x20: 0x3000}


@pytest.mark.parametrize(
    ("field_type", "written", "expected"),
    [
        # every writing of one identifier has the one canonical form (issue 13)
        ("cn_id", "110105 19491231 002X", CN_ID),
        ("cn_id", "110105-1949-1231-002x", CN_ID),
        ("cn_id", "110105.19491231.002X", CN_ID),
        ("cn_id", "110105  19491231  002X", CN_ID),
        ("cn_id", "110105 - 19491231 - 002X", CN_ID),
        ("cn_id", "11010519491231002Ｘ", CN_ID),
        ("cn_id", "110105 19491231 002X".translate(_FULL_WIDTH), CN_ID),
        ("iban", "GB82-WEST-1234-5698-7654-32", "GB82WEST12345698765432"),
        ("iban", "gb82  west  1234  5698  7654  32", "GB82WEST12345698765432"),
        ("iban", "DE89.3704.0044.0532.0130.00", "DE89370400440532013000"),
        ("iban", "Gb82West12345698765432", "GB82WEST12345698765432"),
        ("iban", "GB82 WEST 1234 5698 7654 32".translate(_FULL_WIDTH), "GB82WEST12345698765432"),
        ("iban", "GB82\u00a0WEST\u00a01234\u00a05698\u00a07654\u00a032", "GB82WEST12345698765432"),
        ("card", "4111.1111.1111.1111", "4111111111111111"),
        ("card", "4111  1111  1111  1111", "4111111111111111"),
        ("card", "4111 - 1111 - 1111 - 1111", "4111111111111111"),
        ("card", "4111-1111-1111-1111".translate(_FULL_WIDTH), "4111111111111111"),
        ("card", "6205 5000 0000 0000 004", "6205500000000000004"),
        ("ssn", "123.45.6789", "123456789"),
        ("ssn", "123  45  6789", "123456789"),
        ("ssn", "123-45-6789".translate(_FULL_WIDTH), "123456789"),
        ("phone", "(+86) 138 0013 8000", "+8613800138000"),
        ("phone", "(+86)13800138000", "+8613800138000"),
        ("phone", "+86.138.0013.8000", "+8613800138000"),
        ("phone", "(+86) 138 0013 8000".translate(_FULL_WIDTH), "+8613800138000"),
    ],
)
def test_identifier_writings_meet(field_type: str, written: str, expected: str) -> None:
    assert canonicalize(field_type, written, "CN") == expected


def test_identifier_writings_keep_their_checks() -> None:
    assert canonicalize("card", "4111.1111.1111.1112") is None
    assert canonicalize("iban", "gb82-west-1234-5698-7654-33") is None
    assert canonicalize("cn_id", "110105.19491231.0021") is None
    assert canonicalize("ssn", "666.12.3456") is None
    assert canonicalize("passport", "AB.123456") is None  # dots are an identifier separator only


# --------------------------------------------------------------------------- text-like types


def test_emails() -> None:
    assert canonicalize("email", " John.Doe@ACME.com ") == "john.doe@acme.com"
    assert canonicalize("email", "user@Bücher.de") == "user@xn--bcher-kva.de"
    assert canonicalize("email", "ＪＯＨＮ@acme.com") == "john@acme.com"
    for bad in ("john", "john@acme", "@acme.com", "a b@acme.com", "a@@acme.com", "a@acme..com", "a@-x.com"):
        assert canonicalize("email", bad) is None, bad


def test_usernames_and_keys() -> None:
    assert canonicalize("username", "  JohnDoe ") == "johndoe"
    assert canonicalize("username", "ＪＯＨＮ_42") == "john_42"
    assert canonicalize("username", "ab") is None
    assert canonicalize("username", "john doe") is None
    assert canonicalize("username", "x" * 65) is None
    assert canonicalize("api_key", "  sk_live_AbCdEf0123456789 ") == "sk_live_AbCdEf0123456789"
    assert canonicalize("api_key", "short_key_123") is None
    assert canonicalize("api_key", "has space inside the key") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John  Doe", "john doe"),
        ("J. Doe", "j doe"),
        ("Doe, John", "doe john"),
        ("O'Brien", "obrien"),
        ("ZOË   Ångström", "zoë ångström"),
        ("张三", "张三"),
        ("张 三", "张三"),
        ("约翰·史密斯", "约翰史密斯"),
        ("Ｊｏｈｎ Ｄｏｅ", "john doe"),
    ],
)
def test_names(raw: str, expected: str) -> None:
    assert canonicalize("name", raw) == expected


@pytest.mark.parametrize("bad", ["R2D2", "john@acme.com", "a", "...", "$$$", ""])
def test_not_names(bad: str) -> None:
    assert canonicalize("name", bad) is None


@pytest.mark.parametrize(
    "raw",
    [
        "1990-01-02",
        "1990/1/2",
        "1990.01.02",
        "19900102",
        "02.01.1990",
        "02/01/1990",
        "2-1-1990",
        "1990年1月2日",
        "1990 年 01 月 02 日",
        "2 Jan 1990",
        "January 2, 1990",
        "jan 2 1990",
    ],
)
def test_dob_forms(raw: str) -> None:
    assert canonicalize("dob", raw) == "1990-01-02"


def test_dob_ambiguity_rule() -> None:
    assert canonicalize("dob", "02/01/1990", "US") == "1990-02-01"  # M/D/Y where that is the custom
    assert canonicalize("dob", "02/01/1990", "GB") == "1990-01-02"
    assert canonicalize("dob", "13/01/1990", "US") == "1990-01-13"  # unambiguous either way
    assert canonicalize("dob", "01/13/1990", "GB") == "1990-01-13"


@pytest.mark.parametrize(
    "bad", ["1990-02-30", "1990-13-01", "31/31/1990", "90-01-02", "1850-01-01", "birthday"]
)
def test_impossible_dates(bad: str) -> None:
    assert canonicalize("dob", bad) is None


def test_text_passport_ip() -> None:
    assert canonicalize("text", "  Hello\tWORLD \n again ") == "hello world again"
    assert canonicalize("text", "   ") is None
    assert canonicalize("passport", "e 1234 5678") == "E12345678"
    assert canonicalize("passport", "ABCDEFG") is None
    assert canonicalize("ip", " 192.168.001.010 ") is None  # leading zeros are ambiguous: rejected
    assert canonicalize("ip", "10.0.0.1") == "10.0.0.1"
    assert canonicalize("ip", "2001:DB8:0:0::1") == "2001:db8::1"


# --------------------------------------------------------------------------- properties

SAMPLES = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"[+0 ]?[0-9 ()\-.]{5,22}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._]{1,12}@[A-Za-z0-9]{1,10}\.[A-Za-z]{2,4}", fullmatch=True),
    st.sampled_from(["1990年1月2日", "02/01/1990", "GB82 WEST 1234 5698 7654 32", CN_ID, "张 三", "O'Brien"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field_type=st.sampled_from(FIELD_TYPES), value=SAMPLES, region=st.sampled_from([None, "CN", "US", "DE"])
)
def test_canonicalize_is_idempotent(field_type: str, value: str, region: str | None) -> None:
    once = canonicalize(field_type, value, region)
    if once is not None:
        assert canonicalize(field_type, once, region) == once


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_folded_shortcut_agrees_with_canonicalize(value: str) -> None:
    folded = fold(value)
    assert fold(folded) == folded
    for field_type in ("username", "name", "text"):
        assert canonicalize_folded(field_type, folded) == canonicalize(field_type, value)


@settings(max_examples=200, deadline=None)
@given(value=st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_name_path_matches_unicode_path(value: str) -> None:
    folded = fold(value)
    assert name_from_folded(folded) == _unicode_name(folded)


def _with_separators(draw: st.DrawFn, digits: str, separators: str) -> str:
    out = digits[0]
    for digit in digits[1:]:
        out += draw(st.sampled_from(["", "", *separators])) + digit
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data(), national=st.sampled_from(["13800138000", "13912345678", "18612345678"]))
def test_phone_formatting_invariance(data: st.DataObject, national: str) -> None:
    spaced = _with_separators(data.draw, national, " -.")
    prefix = data.draw(st.sampled_from(["", "+86 ", "0086 ", "+86-", "+86 (0) "]))
    assert canonicalize("phone", prefix + spaced, "CN") == "+86" + national


@settings(max_examples=150, deadline=None)
@given(data=st.data(), body=st.from_regex(r"[1-9][0-9]{14}", fullmatch=True))
def test_card_formatting_invariance(data: st.DataObject, body: str) -> None:
    card = luhn_complete(body)
    assert canonicalize("card", _with_separators(data.draw, card, " -")) == card


@settings(max_examples=150, deadline=None)
@given(
    address=st.from_regex(r"[a-z0-9._]{0,10}[a-z0-9]@[a-z0-9]{1,10}\.(com|org|cn|de)", fullmatch=True),
    flips=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_email_case_invariance(address: str, flips: list[bool]) -> None:
    shouted = "".join(c.upper() if flip else c for c, flip in zip(address, flips, strict=False))
    shouted += address[len(flips) :]
    assert canonicalize("email", shouted) == canonicalize("email", address)


@settings(max_examples=200, deadline=None)
@given(field_type=st.sampled_from(FIELD_TYPES), value=st.text(max_size=200))
def test_never_raises_on_text(field_type: str, value: str) -> None:
    canonicalize(field_type, value, "CN")
