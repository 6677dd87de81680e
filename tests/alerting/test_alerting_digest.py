"""Digest mode: window boundaries, deterministic event ids, whitelisting, escaping of hostile text."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.digest import (
    DIGEST_EVENT_TYPE,
    MAX_DIGEST_ALERTS,
    build_digest,
    digest_window,
    render_digest_html,
    render_digest_subject,
    render_digest_text,
)
from core.errors import BadInput

UTC = dt.UTC
FULL_VALUE = "john.smith@acme-bank.example"
HOSTILE_URL = 'https://paste.example/"><script>alert(1)</script><a href="javascript:x">\r\nX: y'
HOSTILE_SOURCE = "<img src=x onerror=alert(1)>"


def t(
    y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0, tz: dt.tzinfo = UTC
) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=tz)


def alert(i: int, severity: str = "medium", **kw: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "id": i,
        "tenant": "acme-bank",
        "severity": severity,
        "status": "new",
        "kinds": ["record"],
        "records": 10 * i,
        "new_records": i,
        "url": f"https://paste.example/{i}",
        "source": "pastebin",
        "first_seen": "2026-10-02T09:10:00+00:00",
        "sightings": [f"https://paste.example/{i}"],
        "findings": [{"kind": "record", "masked": "j***@acme-bank.example", "value": FULL_VALUE}],
        "value": FULL_VALUE,
        "title": "<b>customer dump</b>",
    }
    a.update(kw)
    return a


WINDOW = (t(2026, 10, 2, 9), t(2026, 10, 2, 10))

# -- windows --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "period", "expected"),
    [
        (t(2026, 10, 2, 10, 0, 0), "hourly", (t(2026, 10, 2, 9), t(2026, 10, 2, 10))),
        (t(2026, 10, 2, 10, 59, 59, 999999), "hourly", (t(2026, 10, 2, 9), t(2026, 10, 2, 10))),
        (t(2026, 10, 2, 0, 0, 1), "hourly", (t(2026, 10, 1, 23), t(2026, 10, 2, 0))),
        (t(2026, 10, 2, 0, 0, 0), "daily", (t(2026, 10, 1), t(2026, 10, 2))),
        (t(2026, 10, 2, 23, 59, 59), "daily", (t(2026, 10, 1), t(2026, 10, 2))),
        (t(2027, 1, 1, 0, 30), "daily", (t(2026, 12, 31), t(2027, 1, 1))),
        (t(2028, 3, 1, 5), "daily", (t(2028, 2, 29), t(2028, 3, 1))),
    ],
)
def test_window_is_the_last_complete_period(
    now: dt.datetime, period: Any, expected: tuple[dt.datetime, dt.datetime]
) -> None:
    assert digest_window(now, period) == expected


def test_window_is_utc_whatever_the_input_zone() -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    start, end = digest_window(t(2026, 10, 2, 7, 30, tz=shanghai), "daily")  # 2026-10-01 23:30 UTC
    assert (start, end) == (t(2026, 9, 30), t(2026, 10, 1))
    assert start.tzinfo == UTC
    assert digest_window(dt.datetime(2026, 10, 2, 10, 5), "hourly") == WINDOW  # naive = UTC


def test_unknown_period_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown digest period"):
        digest_window(t(2026, 10, 2), "weekly")  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        build_digest("acme-bank", [], "weekly", WINDOW)  # type: ignore[arg-type]


@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(["hourly", "daily"]),
)
def test_consecutive_windows_neither_overlap_nor_gap(now: dt.datetime, period: Any) -> None:
    start, end = digest_window(now, period)
    assert start < end <= now.replace(tzinfo=UTC)
    step = end - start
    assert digest_window(end + step, period) == (end, end + step)  # the next run's window starts here
    assert now.replace(tzinfo=UTC) < end + step


# -- build ----------------------------------------------------------------------------------------


def test_digest_shape_and_whitelist() -> None:
    digest = build_digest("acme-bank", [alert(1), alert(2, "critical"), alert(3, "low")], "hourly", WINDOW)
    assert digest["type"] == DIGEST_EVENT_TYPE
    assert (digest["tenant"], digest["period"]) == ("acme-bank", "hourly")
    assert (digest["from"], digest["to"]) == ("2026-10-02T09:00:00+00:00", "2026-10-02T10:00:00+00:00")
    assert [a["id"] for a in digest["alerts"]] == [2, 1, 3]  # worst first
    assert all(
        set(a) == {"id", "severity", "records", "new_records", "url", "source"} for a in digest["alerts"]
    )
    assert digest["totals"] == {
        "alerts": 3,
        "records": 60,
        "new_records": 6,
        "by_severity": {"low": 1, "medium": 1, "high": 0, "critical": 1},
        "max_severity": "critical",
        "omitted": 0,
    }
    text = json.dumps(digest)
    assert FULL_VALUE not in text and "customer dump" not in text and "masked" not in text


def test_event_id_is_deterministic() -> None:
    one = build_digest("acme-bank", [alert(1)], "hourly", WINDOW)
    assert one == build_digest("acme-bank", [alert(1)], "hourly", WINDOW)
    # same tenant, period and window: the same idempotency key even if more alerts arrived meanwhile
    assert one["event_id"] == build_digest("acme-bank", [alert(1), alert(2)], "hourly", WINDOW)["event_id"]
    others = {
        build_digest("other-bank", [], "hourly", WINDOW)["event_id"],
        build_digest("acme-bank", [], "daily", (t(2026, 10, 2, 9), t(2026, 10, 3, 9)))["event_id"],
        build_digest("acme-bank", [], "hourly", (t(2026, 10, 2, 10), t(2026, 10, 2, 11)))["event_id"],
        build_digest("acme-bank", [], "hourly", WINDOW, subscription_id=1)["event_id"],
        build_digest("acme-bank", [], "hourly", WINDOW, subscription_id=2)["event_id"],
    }
    assert one["event_id"] not in others and len(others) == 5


def test_duplicates_empty_and_cap() -> None:
    assert build_digest("acme-bank", [alert(1), alert(1)], "hourly", WINDOW)["totals"]["alerts"] == 1
    empty = build_digest("acme-bank", [], "hourly", WINDOW)
    assert empty["alerts"] == [] and empty["totals"]["max_severity"] is None
    many = build_digest("acme-bank", [alert(i) for i in range(MAX_DIGEST_ALERTS + 5)], "daily", WINDOW)
    assert len(many["alerts"]) == MAX_DIGEST_ALERTS
    assert many["totals"]["alerts"] == MAX_DIGEST_ALERTS + 5 and many["totals"]["omitted"] == 5


def test_bad_entries_and_windows_are_refused() -> None:
    with pytest.raises(TypeError):
        build_digest("acme-bank", [alert(1, url={"value": FULL_VALUE})], "hourly", WINDOW)
    with pytest.raises(ValueError, match="id"):
        build_digest("acme-bank", [alert(1, id=None)], "hourly", WINDOW)
    with pytest.raises(BadInput, match="ends before"):
        build_digest("acme-bank", [], "hourly", (WINDOW[1], WINDOW[0]))


def test_console_url_only_when_http() -> None:
    ok = build_digest("acme-bank", [], "hourly", WINDOW, console_url="https://console.example/alerts")
    assert ok["console_url"] == "https://console.example/alerts"
    bad = build_digest("acme-bank", [], "hourly", WINDOW, console_url="javascript:alert(1)")
    assert "console_url" not in bad


# -- rendering ------------------------------------------------------------------------------------


def hostile_digest() -> dict[str, Any]:
    return build_digest(
        "acme-bank",
        [alert(1, "high", url=HOSTILE_URL, source=HOSTILE_SOURCE)],
        "daily",
        (t(2026, 10, 1), t(2026, 10, 2)),
        console_url="https://console.example/alerts?tenant=acme-bank&status=new",
    )


def test_text_keeps_hostile_urls_on_one_line() -> None:
    text = render_digest_text(hostile_digest())
    assert "\r" not in text
    [line] = [ln for ln in text.splitlines() if "#1 HIGH" in ln]
    assert "paste.example" in line and "X: y" in line  # shown, but cannot start a line of its own
    assert "Open in the console: https://console.example/alerts?tenant=acme-bank&status=new" in text
    assert "1 alert" in text and "10 records (1 new)" in text


def test_html_escapes_everything_and_links_only_the_console() -> None:
    html = render_digest_html(hostile_digest())
    assert "<script>" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<a ") == 1
    assert '<a href="https://console.example/alerts?tenant=acme-bank&amp;status=new">' in html


def test_subject() -> None:
    assert (
        render_digest_subject(hostile_digest())
        == "[leaksentinel] daily digest for acme-bank: 1 alert (highest HIGH)"
    )
    assert render_digest_subject(build_digest("acme-bank", [], "hourly", WINDOW)).endswith("0 alerts")
