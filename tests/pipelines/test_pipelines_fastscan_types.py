"""Hashing only some field types (``HashedScanner.scan(types=...)``): exactly the full scan's candidates
of those types, never one more or one less, natively and on every path handed back to Python.

Why it matters: ``scan`` without ``--store`` hashes only the types some tenant registered. A scanner that
dropped a wanted candidate would miss a leak; one whose skipped candidates changed the others (an IP,
not hashed, must still keep its raw from being read as a username) would report different findings.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pipelines_fastscan import (  # tests/pipelines is on the path
    EXAMPLES,
    KEY,
    MULTILINE_EXAMPLES,
    REGION_SETS,
    Pair,
    _allowed_line,
    _digest,
    _line,
    _pairs_of,
    _reference_candidates,
    _regions,
)

from core.canonical import FIELD_TYPES
from pipelines.detection import fastscan
from pipelines.detection.fastscan import HashedScanner, type_mask

pytestmark = pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")

_types = st.frozensets(st.sampled_from(FIELD_TYPES), max_size=len(FIELD_TYPES))
#: The generic types (what most candidates are) and the typed ones whose raws keep generics off a value.
SUBSETS: list[frozenset[str]] = [
    frozenset(),
    frozenset({"email", "phone", "card", "cn_id", "name", "dob"}),  # bench/detect.py's tenants
    frozenset({"username"}),
    frozenset({"text", "name"}),
    frozenset({"ip", "passport", "api_key"}),
    frozenset({"iban", "ssn"}),
]


def _reference_of(text: str, regions: tuple[str, ...], types: frozenset[str]) -> set[Pair]:
    return {
        (_digest(KEY, c.field_type, c.canonical), c.line)
        for c in _reference_candidates(text, regions)
        if c.field_type in types
    }


def _scanned(text: str, regions: tuple[str, ...], types: frozenset[str] | None) -> set[Pair]:
    return _pairs_of(HashedScanner(KEY, regions).scan(text, deadline_s=600, types=types))


def assert_only_types(text: str, regions: tuple[str, ...], types: frozenset[str]) -> None:
    expected = _reference_of(text, regions, types)
    got = _scanned(text, regions, types)
    assert got == expected, (text, sorted(types), len(got - expected), len(expected - got))


def test_native_type_order_is_the_field_types() -> None:
    from pipelines.detection import _scanner

    assert _scanner.TYPES == FIELD_TYPES


@pytest.mark.parametrize("types", SUBSETS, ids=lambda t: "+".join(sorted(t)) or "none")
@pytest.mark.parametrize("regions", REGION_SETS, ids=lambda r: "+".join(r) or "none")
def test_examples_hash_exactly_the_types_asked(types: frozenset[str], regions: tuple[str, ...]) -> None:
    text = "\n".join([*EXAMPLES, *MULTILINE_EXAMPLES])
    assert_only_types(text, regions, types)


def test_every_type_alone() -> None:
    text = "\n".join([*EXAMPLES, *MULTILINE_EXAMPLES])
    for field_type in FIELD_TYPES:
        expected = _reference_of(text, ("CN", "US"), frozenset({field_type}))
        assert expected, field_type  # the examples hold every type
        assert _scanned(text, ("CN", "US"), frozenset({field_type})) == expected, field_type


def test_a_typed_value_not_hashed_still_keeps_its_raw_from_the_generic_types() -> None:
    # "10.0.0.1" is an IP: the reference reads it as no username or text. With only the username type
    # hashed, the IP is not hashed, yet its raw must still keep the username form off (a scanner that
    # skipped the IP outright would hash "10.0.0.1" as a username here).
    # Line 2: the reference reads a phone once per line, so the second writing's raw is not a phone's and
    # "13800138000" is also a username there; a scanner that kept every raw of a skipped type would not
    # hash it.
    text = "login,10.0.0.1,dragon_slayer\n138 0013 8000,13800138000\n13800138000|13800138000|x"
    wanted = frozenset({"username", "text"})
    expected = _reference_of(text, ("CN",), wanted)
    assert (_digest(KEY, "username", "dragon_slayer"), 1) in expected
    assert (_digest(KEY, "username", "10.0.0.1"), 1) not in expected
    assert (_digest(KEY, "username", "13800138000"), 2) in expected
    assert (_digest(KEY, "username", "13800138000"), 3) not in expected
    assert _scanned(text, ("CN",), wanted) == expected


def test_all_types_is_the_full_scan() -> None:
    text = "\n".join(EXAMPLES)
    full = _scanned(text, ("CN",), None)
    assert _scanned(text, ("CN",), frozenset(FIELD_TYPES)) == full
    assert full == _reference_of(text, ("CN",), frozenset(FIELD_TYPES))


def test_skipped_types_cost_no_digest() -> None:
    text = "\n".join(EXAMPLES) * 3
    scanner = HashedScanner(KEY, ("CN",))
    full = scanner.scan(text, deadline_s=600)
    some = scanner.scan(text, deadline_s=600, types=frozenset({"email", "phone"}))
    expected = {d for d, _ in _reference_of(text, ("CN",), frozenset({"email", "phone"}))}
    assert len(some.unique_sorted()) // 16 == len(expected) < len(full.unique_sorted()) // 16


def test_lines_handed_back_to_python_are_filtered_too() -> None:
    # a line the native scanner does not take (Devanagari), a JSON line (its values are scanned apart)
    # and a JSON line with an escape the scanner hands back
    lines = [
        "नमस्ते alice@example.com,13800138000,dragon_slayer,10.0.0.1",
        json.dumps({"user": "dragon_slayer", "mail": "bob@example.org", "ip": "10.0.0.1"}),
        '{"name": "\\u0928\\u092e", "mail": "eve@example.net", "phone": "+86 138 0013 8000"}',
        "plain,carol@example.com,hunter22",
    ]
    text = "\n".join(lines)
    scan = HashedScanner(KEY, ("CN",)).scan(text, deadline_s=600)
    assert scan.deferred_lines >= 2 and scan.python_lines >= 1
    for types in SUBSETS:
        assert_only_types(text, ("CN",), types)


def test_python_extractor_alone_filters_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    text = "\n".join(EXAMPLES[:200])
    scanner = HashedScanner(KEY, ("CN",))
    assert not scanner.native
    for types in SUBSETS[:3]:
        got = _pairs_of(scanner.scan(text, deadline_s=600, types=types))
        assert got == _reference_of(text, ("CN",), types)


def test_a_listing_reads_every_type_whatever_the_last_scan_hashed() -> None:
    text = "alice@example.com,dragon_slayer,13800138000"
    scanner = HashedScanner(KEY, ("CN",))
    scanner.scan(text, deadline_s=60, types=frozenset({"phone"}))
    listed = {c.field_type for c, _ in scanner.hashed_candidates(text, [1])}
    assert {"email", "username", "phone", "text"} <= listed


def test_bad_type_masks_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown field types: nope"):
        type_mask({"email", "nope"})
    assert type_mask(None) == (1 << len(FIELD_TYPES)) - 1
    assert type_mask({"phone"}) == 1 << FIELD_TYPES.index("phone")
    from pipelines.detection import _scanner

    native = _scanner.Scanner(KEY, [], [], bytes(10_000), lambda *a: None, lambda *a: None)
    with pytest.raises(ValueError, match="types"):
        native.scan("a@b.example", False, 0.0, None, b"", 1 << len(FIELD_TYPES))
    with pytest.raises(ValueError, match="types"):
        native.scan("a@b.example", False, 0.0, None, b"", -1)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.one_of(_line, _allowed_line), min_size=1, max_size=6),
    regions=_regions,
    types=_types,
)
def test_generated_texts_hash_exactly_the_types_asked(
    lines: list[str], regions: tuple[str, ...], types: frozenset[str]
) -> None:
    assert_only_types("\n".join(lines), regions, types)
