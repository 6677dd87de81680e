"""is_selector / selector_terms / extract_selectors: one normal form on both sides of the index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.search import extract_selectors, is_selector, selector_terms
from core.search.cjk import tokenize

CASES = [
    ("Alice.W@ACME.com", "email", ["alice.w@acme.com"]),
    ('"bob@example.org"', "email", ["bob@example.org"]),
    ("+8613800138000", "phone", ["8613800138000", "13800138000"]),
    ("+86 138 0013 8000", "phone", ["8613800138000", "13800138000"]),
    ("0086 138-0013-8000", "phone", ["8613800138000", "13800138000"]),
    ("+1 (415) 555-2671", "phone", ["14155552671", "4155552671"]),
    ("(415) 555-2671", "phone", ["4155552671"]),
    ("138 0013 8000", "phone", ["13800138000"]),
    ("13800138000", "phone", ["13800138000"]),
    ("acme.com", "domain", ["acme.com"]),
    ("VPN.Acme.COM.", "domain", ["vpn.acme.com"]),
    ("例子.中国", "domain", ["xn--fsqu00a.xn--fiqs8s"]),
    ("10.0.0.1", "ipv4", ["10.0.0.1"]),
    ("2001:DB8:0:0::1", "ipv6", ["2001:db8::1"]),
    ("4111 1111 1111 1111", "card", ["4111111111111111"]),
    ("4111-1111-1111-1111", "card", ["4111111111111111"]),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "btc", ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]),
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "btc", ["bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]),
    ("D41D8CD98F00B204E9800998ECF8427E", "md5", ["d41d8cd98f00b204e9800998ecf8427e"]),
    ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha1", ["da39a3ee5e6b4b0d3255bfef95601890afd80709"]),
    (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256",
        ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ),
]


@pytest.mark.parametrize(("text", "kind", "terms"), CASES)
def test_selectors_are_recognised_and_normalised(text: str, kind: str, terms: list[str]) -> None:
    assert is_selector(text) == kind
    assert selector_terms(text) == terms


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "客户数据",
        "acme password",
        "2024-01-15",
        "12:30:45",
        "256.1.1.1",
        "1.2.3",
        "4111 1111 1111 1112",  # Luhn fails
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",  # checksum fails
        "d41d8cd98f00b204e9800998ecf8427",  # 31 hex
        "not@valid",
        "@acme.com",
        "a@b",
        "",
        "   ",
        "+1",
        "x" * 5000,
        "foo bar.com",
    ],
)
def test_ordinary_text_is_not_a_selector(text: str) -> None:
    assert is_selector(text) is None
    assert selector_terms(text) == []


def test_extraction_uses_the_same_normal_forms() -> None:
    text = (
        "mail Bob@Acme.com from 10.0.0.1, host vpn.corp.example.org\n"
        "call +1 (415) 555-2671 or 138-0013-8000, card 4111 1111 1111 1111\n"
        "hash D41D8CD98F00B204E9800998ECF8427E, v6 2001:db8::1, at 12:30:45 on 2024-01-15\n"
        "btc 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    )
    found = extract_selectors(text)
    for query in (
        "bob@acme.com",
        "acme.com",
        "vpn.corp.example.org",
        "example.org",
        "10.0.0.1",
        "+14155552671",
        "(415) 555-2671",
        "+86 138 0013 8000",
        "4111111111111111",
        "d41d8cd98f00b204e9800998ecf8427e",
        "2001:0db8::0001",
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
    ):
        assert set(selector_terms(query)) & found, query
    assert "111111111111" not in found  # no phone read out of the card's digits
    assert not any(t.startswith("2024") or (t.startswith("12") and len(t) < 7) for t in found)


def test_cjk_tokens() -> None:
    assert tokenize("ACME 客户数据库") == ["acme", "客户", "户数", "数据", "据库"]
    assert tokenize("acme客户") == ["acme", "客户"]
    assert tokenize("客 x") == ["客", "x"]
    assert tokenize("ＡＣＭＥ") == ["acme"]


@given(st.text(max_size=400))
def test_selector_functions_never_raise(text: str) -> None:
    kind = is_selector(text)
    assert (kind is None) == (selector_terms(text) == [])
    extract_selectors(text)
