"""Regex watches: RE2 rejections, linear time on pathological patterns, one hit per (tenant, watch)."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import BadInput
from pipelines.detection.regexes import CHUNK_CHARS, RegexHit, RegexMatcher, compile_watch_regex


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [(r"(a)\1", "invalid escape sequence"), (r"(?=x)", "invalid perl operator"), ("[", "missing ]")],
)
def test_rejected_patterns_name_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(BadInput) as info:
        compile_watch_regex(pattern)
    message = str(info.value)
    assert message.startswith("regex rejected by RE2: ") and reason in message
    assert "b'" not in message


def test_too_long_and_empty_and_match_everything_are_rejected() -> None:
    for bad in ["a" * 1025, "", "x*", "^"]:
        with pytest.raises(BadInput):
            compile_watch_regex(bad)


def test_pathological_pattern_finishes_quickly() -> None:
    matcher = RegexMatcher([(1, 1, "(a+)+$"), (1, 2, r"(x+x+)+y")])
    started = time.monotonic()
    assert matcher.find("a" * 100_000 + "b\n" + "x" * 100_000) == []
    hits = matcher.find("a" * 100_000 + "b\n" + "a" * 100_000)
    assert time.monotonic() - started < 2
    assert [(h.watch_id, h.line) for h in hits] == [(1, 2)]


def test_first_match_per_watch_with_matched_text() -> None:
    matcher = RegexMatcher([(1, 5, r"ACME-\d{6}"), (2, 6, r"ACME-\d{6}"), (1, 7, r"(?i)^internal only$")])
    text = "intro\nticket ACME-123456 and ACME-654321\nInternal Only\r\nACME-000000"
    hits = sorted(matcher.find(text), key=lambda h: h.watch_id)
    assert hits == [
        RegexHit(1, 5, r"ACME-\d{6}", 2, "ACME-123456"),
        RegexHit(2, 6, r"ACME-\d{6}", 2, "ACME-123456"),
        RegexHit(1, 7, r"(?i)^internal only$", 3, "Internal Only"),
    ]


def test_unicode_pattern_and_text() -> None:
    (hit,) = RegexMatcher([(1, 1, r"客户\d+条")]).find("出售客户100000条数据")
    assert hit.matched == "客户100000条"


def test_long_line_is_scanned_in_chunks() -> None:
    line = "z" * (CHUNK_CHARS * 2 + 10) + " ACME-999999"
    (hit,) = RegexMatcher([(1, 1, r"ACME-\d{6}")]).find(line)
    assert hit.line == 1 and hit.matched == "ACME-999999"


def test_anchors_do_not_fire_at_chunk_cuts() -> None:
    matcher = RegexMatcher([(1, 1, "^a+$"), (1, 2, r"\bb{3}\b")])
    assert matcher.find("a" * (CHUNK_CHARS * 3) + "b") == []
    assert matcher.find("b" * (CHUNK_CHARS * 3)) == []
    anchored = RegexMatcher([(1, 1, "^start"), (1, 2, "end$")])
    hits = anchored.find("start" + "z" * (CHUNK_CHARS * 2) + "end")
    assert sorted((h.watch_id, h.matched) for h in hits) == [(1, "start"), (2, "end")]


def test_matched_text_is_cut() -> None:
    (hit,) = RegexMatcher([(1, 1, r"start.*")]).find("start" + "y" * 1000)
    assert len(hit.matched) == 200


def test_many_patterns_across_set_shards() -> None:
    matcher = RegexMatcher([(1, i, rf"token{i}-[a-z]{{3}}\d") for i in range(600)])
    hits = matcher.find("noise token599-abc1 token0-xyz9 token300-no")
    assert sorted(h.watch_id for h in hits) == [0, 599]


def test_empty_matcher() -> None:
    assert RegexMatcher([]).find("abc") == []


def test_construction_rejects_bad_pattern() -> None:
    with pytest.raises(BadInput):
        RegexMatcher([(1, 1, r"(a)\1")])


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    RegexMatcher([(1, 1, r"\d{3}-\d{4}"), (1, 2, "(?i)acme")]).find(text)


def test_lone_surrogates_do_not_break_re2() -> None:
    (hit,) = RegexMatcher([(1, 1, "acme")]).find("\ud800 acme \udfff")
    assert hit.matched == "acme"


def test_huge_single_line_and_binary_junk() -> None:
    matcher = RegexMatcher([(1, 1, r"ACME-\d{6}"), (1, 2, "(a+)+$")])
    started = time.monotonic()
    assert matcher.find("a" * 20_000_000 + "b") == []
    matcher.find(random.Random(5).randbytes(5_000_000).decode("latin-1"))
    assert time.monotonic() - started < 30
