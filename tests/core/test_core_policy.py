"""The alert policy: subscription filters, tenant severity, recycled summaries, suppression keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import BadInput
from core.models import SEVERITIES
from core.policy import (
    DEFAULT_THRESHOLDS,
    FINDING_KINDS,
    at_least,
    passes_filters,
    recycled_summary,
    suppression_key,
    tenant_severity,
    validate_kinds,
    validate_thresholds,
)

HASH = "ab" * 32


def alert(severity: str = "high", kinds: Any = ("record",)) -> dict[str, Any]:
    return {"id": 1, "severity": severity, "kinds": list(kinds) if not isinstance(kinds, str) else kinds}


# -- passes_filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "minimum", "expected"),
    [
        ("low", "low", True),
        ("medium", "high", False),
        ("high", "high", True),
        ("critical", "medium", True),
        ("bogus", "medium", False),  # an unknown level never outranks a real one
        ("bogus", "low", True),
    ],
)
def test_min_severity(severity: str, minimum: str, expected: bool) -> None:
    assert passes_filters(alert(severity), min_severity=minimum, kinds=None) is expected


def test_kinds_filter() -> None:
    a = alert(kinds=["record", "keyword"])
    assert passes_filters(a, min_severity="low", kinds=None)
    assert passes_filters(a, min_severity="low", kinds=[])  # empty: no filter
    assert passes_filters(a, min_severity="low", kinds={"keyword", "secret"})
    assert not passes_filters(a, min_severity="low", kinds=["secret"])
    assert not passes_filters(alert(kinds=[]), min_severity="low", kinds=["record"])
    assert not passes_filters({"id": 1, "severity": "high"}, min_severity="low", kinds=["record"])


def test_kinds_given_as_a_bare_string_is_one_kind_not_characters() -> None:
    assert passes_filters(alert(kinds="record"), min_severity="low", kinds=["record"])
    assert not passes_filters(alert(kinds="record"), min_severity="low", kinds=["r"])


def test_both_filters_must_pass() -> None:
    assert not passes_filters(alert("low", ["secret"]), min_severity="high", kinds=["secret"])


def test_unknown_min_severity_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown severity"):
        passes_filters(alert(), min_severity="urgent", kinds=None)


def test_validate_kinds() -> None:
    assert validate_kinds(None) is None
    assert validate_kinds([]) is None
    assert validate_kinds(["secret", "record", "secret"]) == ["record", "secret"]
    assert set(FINDING_KINDS) >= {"record", "domain", "keyword", "regex", "document", "secret"}
    with pytest.raises(BadInput, match="unknown finding kind 'emails'"):
        validate_kinds(["emails"])


# -- tenant_severity ------------------------------------------------------------------------------


def test_severity_rises_with_new_records_under_default_thresholds() -> None:
    sev = [tenant_severity(n, n, ["record"], ["medium"], None) for n in (1, 9, 10, 99, 100, 999, 1000)]
    assert sev == ["medium", "medium", "medium", "medium", "high", "high", "critical"]
    assert tenant_severity(1, 1, ["record"], ["low"], None) == "low"


def test_tenant_thresholds_override_defaults() -> None:
    thresholds = {"high": 50, "critical": 500}
    assert tenant_severity(60, 60, ["record"], ["medium"], thresholds) == "high"
    assert tenant_severity(600, 600, ["record"], ["medium"], thresholds) == "critical"
    assert tenant_severity(60, 60, ["record"], ["medium"], None) == "medium"


def test_recycled_records_do_not_raise_severity_beyond_medium() -> None:
    assert tenant_severity(5000, 0, ["record"], ["low"], None) == "medium"
    assert tenant_severity(5000, 3, ["record"], ["low"], None) == "medium"
    assert tenant_severity(5000, 5000, ["record"], ["low"], None) == "critical"


def test_worst_finding_sets_the_floor_passwords_and_secrets() -> None:
    # a record leaked with its password is already a high finding
    assert tenant_severity(1, 0, ["record"], ["low", "high"], None) == "high"
    assert tenant_severity(0, 0, ["secret"], [], None) == "high"
    assert tenant_severity(0, 0, ["keyword"], [], None) == "low"


def test_many_new_records_of_a_high_kind_are_critical() -> None:
    assert tenant_severity(150, 150, ["record"], ["high"], None) == "critical"
    assert tenant_severity(150, 20, ["record"], ["high"], None) == "high"


def test_inconsistent_counts_are_clamped() -> None:
    assert tenant_severity(5, 5000, ["record"], ["low"], None) == "low"
    assert tenant_severity(-3, -1, ["record"], [], None) == "low"


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"urgent": 5}, "unknown severity threshold"),
        ({"high": -1}, "non-negative integer"),
        ({"high": "50"}, "non-negative integer"),
        ({"high": True}, "non-negative integer"),
        ({"high": 500, "critical": 50}, "must not decrease"),
        ({"medium": 200}, "must not decrease"),
    ],
)
def test_bad_thresholds(thresholds: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        tenant_severity(1, 1, ["record"], [], thresholds)


def test_validate_thresholds_merges_defaults() -> None:
    assert validate_thresholds(None) == dict(DEFAULT_THRESHOLDS)
    assert validate_thresholds({"critical": 2000}) == {"medium": 10, "high": 100, "critical": 2000}


@given(
    records=st.integers(0, 5000),
    new=st.integers(0, 5000),
    extra=st.integers(0, 5000),
    kinds=st.sets(st.sampled_from(FINDING_KINDS)),
    findings=st.lists(st.sampled_from(SEVERITIES), max_size=4),
)
def test_more_new_records_never_lower_severity(
    records: int, new: int, extra: int, kinds: set[str], findings: list[str]
) -> None:
    new = min(new, records)
    before = tenant_severity(records, new, kinds, findings, None)
    after = tenant_severity(records + extra, new + extra, kinds, findings, None)
    assert at_least(after, before)
    assert before in SEVERITIES


# -- recycled_summary -----------------------------------------------------------------------------


def test_recycled_summary_texts() -> None:
    since = dt.datetime(2026, 10, 2, 23, 30, tzinfo=dt.UTC)
    assert recycled_summary(412, 37, since) == "412 records, 37 new since 2026-10-02"
    assert recycled_summary(412, 37, None) == "412 records, 37 new"
    assert recycled_summary(100, 0, since) == "100 records, all seen before (recycled)"
    assert recycled_summary(100, 100, since) == "100 records, all new"
    assert recycled_summary(1, 0, None) == "1 record, all seen before (recycled)"
    assert recycled_summary(0, 0, None) == "no registered records"


def test_recycled_summary_dates_are_utc() -> None:
    tz = dt.timezone(dt.timedelta(hours=8))
    since = dt.datetime(2026, 10, 3, 2, 0, tzinfo=tz)  # 2026-10-02 18:00 UTC
    assert recycled_summary(10, 2, since).endswith("since 2026-10-02")
    assert recycled_summary(10, 2, dt.datetime(2026, 10, 3, 2, 0)).endswith("since 2026-10-03")


# -- suppression_key ------------------------------------------------------------------------------


def test_suppression_key_is_stable_and_opaque() -> None:
    key = suppression_key("record", 7, "cust-00001", HASH)
    assert key == suppression_key("record", 7, "cust-00001", HASH.upper())
    assert key.startswith("fp1:") and len(key) == 4 + 64
    assert "cust-00001" not in key


def test_suppression_key_distinguishes_every_part() -> None:
    keys = {
        suppression_key("record", 7, "cust-00001", HASH),
        suppression_key("keyword", 7, "cust-00001", HASH),
        suppression_key("record", 8, "cust-00001", HASH),
        suppression_key("record", None, "cust-00001", HASH),
        suppression_key("record", 0, "cust-00001", HASH),
        suppression_key("record", 7, "cust-00002", HASH),
        suppression_key("record", 7, None, HASH),
        suppression_key("record", 7, "cust-00001", "cd" * 32),
    }
    assert len(keys) == 8


def test_suppression_key_needs_a_content_fingerprint() -> None:
    # without it a single false positive would silence the watch item on every future posting
    for empty in ("", "   "):
        with pytest.raises(BadInput, match="content fingerprint"):
            suppression_key("keyword", 7, None, empty)
    with pytest.raises(BadInput):
        suppression_key("", 7, None, HASH)
