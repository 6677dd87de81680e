"""Keyword watches: folding (case, full-width), word boundaries, CJK, one hit per (tenant, watch)."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import BadInput
from pipelines.detection.keywords import KeywordHit, KeywordMatcher, normalize_keyword


def test_case_insensitive_and_first_line() -> None:
    hits = KeywordMatcher([(1, 10, "Acme")]).find("nothing\nsold by ACME corp\nacme again")
    assert hits == [KeywordHit(1, 10, "Acme", 2, "sold by ACME corp")]


def test_full_width_matches_ascii_keyword() -> None:
    hits = KeywordMatcher([(1, 10, "acme")]).find("leak of ＡＣＭＥ data")
    assert [(h.watch_id, h.line) for h in hits] == [(10, 1)]
    assert "ＡＣＭＥ" in hits[0].excerpt


def test_full_width_keyword_matches_ascii_text() -> None:
    assert len(KeywordMatcher([(1, 10, "ＡＣＭＥ")]).find("acme")) == 1


def test_cjk_keyword_found_in_chinese_text() -> None:
    text = "标题：出售\n本帖出售某公司客户数据共十万条，价格私聊"
    hits = KeywordMatcher([(3, 7, "客户数据")]).find(text)
    assert [(h.tenant_id, h.watch_id, h.keyword, h.line) for h in hits] == [(3, 7, "客户数据", 2)]
    assert "客户数据" in hits[0].excerpt


def test_ascii_keyword_needs_word_boundaries() -> None:
    matcher = KeywordMatcher([(1, 1, "acme")])
    assert matcher.find("acmeplex and macme") == []
    assert [h.line for h in matcher.find("acmeplex\nacme-corp")] == [2]
    assert len(matcher.find("在acme的服务器")) == 1  # CJK neighbours are not ASCII word characters


def test_multi_tenant_same_keyword_one_hit_each() -> None:
    matcher = KeywordMatcher([(1, 10, "acme"), (2, 20, "ACME"), (1, 10, "acme")])
    hits = matcher.find("acme acme\nacme")
    assert sorted((h.tenant_id, h.watch_id, h.line) for h in hits) == [(1, 10, 1), (2, 20, 1)]


def test_two_watches_different_lines() -> None:
    hits = KeywordMatcher([(1, 1, "alpha"), (1, 2, "beta")]).find("x\nbeta\nalpha beta")
    assert sorted((h.watch_id, h.line) for h in hits) == [(1, 3), (2, 2)]


def test_empty_matcher_and_empty_text() -> None:
    assert KeywordMatcher([]).find("anything") == []
    assert KeywordMatcher([(1, 1, "x y")]).find("") == []


def test_excerpt_is_bounded_and_around_match() -> None:
    line = "a" * 100 + " secret-project " + "b" * 100
    (hit,) = KeywordMatcher([(1, 1, "secret-project")]).find(line)
    assert len(hit.excerpt) <= 60 and "secret-project" in hit.excerpt


def test_folding_that_changes_length() -> None:
    (hit,) = KeywordMatcher([(1, 1, "strasse")]).find("ﬁx Straße 5 ﬁx")
    assert "Straße" in hit.excerpt


@pytest.mark.parametrize("bad", ["", "   ", "x" * 257])
def test_normalize_keyword_rejects(bad: str) -> None:
    with pytest.raises(BadInput):
        normalize_keyword(bad)


def test_normalize_keyword_folds() -> None:
    assert normalize_keyword("  ＡＣＭＥ Corp ") == "acme corp"


@settings(max_examples=200, deadline=None)
@given(st.text(), st.lists(st.text(min_size=1, max_size=8).filter(str.strip), max_size=5))
def test_never_raises(text: str, keywords: list[str]) -> None:
    hits = KeywordMatcher([(1, i, k) for i, k in enumerate(keywords)]).find(text)
    assert all(h.line >= 1 for h in hits)


def test_huge_single_line_and_binary_junk() -> None:
    matcher = KeywordMatcher([(1, 1, "acme"), (1, 2, "客户数据")])
    started = time.monotonic()
    assert matcher.find("x" * 20_000_000) == []
    junk = random.Random(5).randbytes(5_000_000).decode("latin-1")
    matcher.find(junk)
    assert time.monotonic() - started < 30
