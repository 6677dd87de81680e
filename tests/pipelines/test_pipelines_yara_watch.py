"""YARA watch matching (pipelines/detection/yara_watch.py): namespaces per watch, lines, time limit."""

from __future__ import annotations

import time

from pipelines.detection.lines import Deadline
from pipelines.detection.yara_watch import YaraMatcher

SLOW = """rule Slow {
    condition:
        for all i in (0..filesize) : ( for all j in (0..filesize) : ( uint8(i) != 7 or uint8(j) != 7 ) )
}"""


def test_line_is_that_of_the_first_match_in_utf8_text() -> None:
    matcher = YaraMatcher([(1, 10, 'rule R { strings: $a = "needle" condition: $a }')])
    text = "第一行 ünïcode\n二\nneedle here\nneedle again\n"
    hits = matcher.find(text, Deadline.after(10.0))
    assert [(h.tenant_id, h.watch_id, h.rule, h.line) for h in hits] == [(1, 10, "R", 3)]


def test_a_slow_rule_is_stopped_by_the_posting_deadline() -> None:
    matcher = YaraMatcher([(1, 10, SLOW), (2, 20, 'rule Fast { strings: $a = "x" condition: $a }')])
    deadline = Deadline.after(1.5)
    started = time.monotonic()
    hits = matcher.find("x" * 20_000, deadline)
    elapsed = time.monotonic() - started
    assert elapsed < 5.0, elapsed
    assert deadline.exceeded and hits == []  # one rule set: a timeout leaves the posting partial


def test_no_time_left_runs_nothing_and_says_partial() -> None:
    matcher = YaraMatcher([(1, 10, "rule R { condition: true }")])
    deadline = Deadline.after(0.2)
    assert matcher.find("text", deadline) == [] and deadline.exceeded


def test_a_stored_source_that_no_longer_compiles_does_not_stop_the_others() -> None:
    matcher = YaraMatcher(
        [(1, 10, "rule Broken { condition: $nope }"), (2, 20, "rule Ok { condition: true }")]
    )
    hits = matcher.find("text", Deadline.after(10.0))
    assert [(h.tenant_id, h.rule) for h in hits] == [(2, "Ok")]
