"""The pure parts of the alert page: abuse contacts and next steps, "2 h ago", where a leak is, the
excerpt's bounds on hostile postings, and the actions each state offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.alert_story import (
    EXCERPT_LINE_CHARS,
    EXCERPT_LINES,
    ago,
    offered_actions,
    posting_excerpt,
    where_of,
)
from core.next_steps import abuse_contact, next_steps


def test_abuse_contacts() -> None:
    assert abuse_contact("pastebin.com") == abuse_contact("www.pastebin.com")
    assert "github.com" in (abuse_contact("gist.github.com") or "")
    assert abuse_contact("paste.example") == "abuse@paste.example"
    assert abuse_contact("forum.example.") == "abuse@forum.example"
    for none in (None, "", "localhost", "127.0.0.1", "[::1]", "abcdefghijklmnop.onion", "intranet"):
        assert abuse_contact(none) is None, none


def test_next_steps_follow_what_leaked() -> None:
    steps = next_steps(
        {"record", "domain"}, fields={"email", "card"}, with_password=True, host="paste.example"
    )
    text = [s["step"] for s in steps]
    assert text[0].startswith("Reset the passwords") and any("reissue" in t for t in text)
    assert steps[-1]["kind"] == "takedown" and steps[-1]["contact"] == "abuse@paste.example"
    plain = [s["step"] for s in next_steps({"record"}, fields={"email"}, host=None)]
    assert not any("Reset the passwords" in t for t in plain) and "hosting provider" in plain[-1]
    assert next_steps({"secret"}, host="t.me")[0]["step"].startswith("Rotate the key")


def test_ago_and_where() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=5), now) == "just now"
    assert ago(now - timedelta(minutes=7), now) == "7 min ago"
    assert ago(now - timedelta(hours=2, minutes=59), now) == "2 h ago"
    assert ago(now - timedelta(days=3), now) == "3 d ago"
    assert ago(datetime(2026, 12, 3, 10, 0), now) == "2 h ago"  # naive: UTC
    assert ago(None, now) == "at an unknown time"
    assert where_of("https://www.Paste.example/raw/x", "pb") == ("paste.example", "www.paste.example")
    assert where_of("/tmp/leaks/dump.txt", "local") == ("dump.txt", None)
    assert where_of("javascript:alert(1)", "pb") == ("javascript:alert(1)", None)
    assert where_of(None, "pb") == ("pb", None)


def test_excerpt_marks_matches_and_stays_bounded() -> None:
    text = "\n".join(f"line {n}" for n in range(1, 21))
    rows = posting_excerpt(text, [10, 10, 0, -1, 999])
    shown = [(r["line"], r["matched"]) for r in rows if not r["gap"]]
    assert shown == [(8, False), (9, False), (10, True), (11, False), (12, False)]  # 999: past the end
    assert rows[0]["gap"] and not any(r["gap"] for r in rows[1:])
    rows = posting_excerpt(text, [2, 19])
    assert [r["line"] if not r["gap"] else "…" for r in rows] == [1, 2, 3, 4, "…", 17, 18, 19, 20]
    assert posting_excerpt(text, []) == []
    huge = ("x" * 100_000 + "\n") * 3000  # long lines, many matches
    rows = posting_excerpt(huge, range(1, 3001))
    assert len([r for r in rows if not r["gap"]]) <= EXCERPT_LINES
    assert all(len(r["text"]) <= EXCERPT_LINE_CHARS + 1 for r in rows if not r["gap"])


def test_actions_by_state() -> None:
    assert offered_actions("new") == ("ack", "resolve", "false-positive")
    assert offered_actions("acked") == ("resolve", "false-positive", "reopen")
    assert offered_actions("resolved") == offered_actions("false_positive") == ("reopen",)
    assert offered_actions("bogus") == ()
