"""Masked display forms: recognisable, never the whole value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.canonical import FIELD_TYPES
from core.masking import mask


@pytest.mark.parametrize(
    ("field_type", "value", "expected"),
    [
        ("email", "john@acme.com", "j***@acme.com"),
        ("phone", "+8613800138000", "+86 138****8000"),
        ("phone", "+442079460958", "+44 207***0958"),
        ("card", "6212345678901237204", "**** **** **** 7204"),
        ("card", "4111 1111 1111 7204", "**** **** **** 7204"),
        ("iban", "GB82WEST12345698765432", "GB****************5432"),
        ("cn_id", "110105194912311234", "110105********1234"),
        ("ssn", "123456789", "***-**-6789"),
        ("name", "John Doe", "J*** D***"),
        ("name", "张三", "张*"),
        ("dob", "1990-01-02", "1990-**-**"),
        ("username", "johndoe", "j*****e"),
    ],
)
def test_masks(field_type: str, value: str, expected: str) -> None:
    assert mask(field_type, value) == expected


def test_api_key_keeps_only_a_prefix() -> None:
    masked = mask("api_key", "sk_live_AbCdEf0123456789")
    assert masked.startswith("sk_l") and "AbCdEf0123" not in masked


@settings(max_examples=300, deadline=None)
@given(field_type=st.sampled_from([*FIELD_TYPES, "other"]), value=st.text(min_size=4, max_size=40))
def test_never_the_whole_value(field_type: str, value: str) -> None:
    masked = mask(field_type, value)
    assert masked != value
    assert isinstance(masked, str)


@pytest.mark.parametrize("value", ["", "a", "ab", "abc"])
def test_short_values_do_not_crash(value: str) -> None:
    for field_type in FIELD_TYPES:
        assert isinstance(mask(field_type, value), str)
