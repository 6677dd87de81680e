"""The lines whose address may have a non-ASCII domain, found one C search per line
(`_unicode_host_line_numbers`), are the lines `_unicode_host_lines` yields one at a time; the secret
detectors' owners read from the domain candidates' first looks are the domains the posting names.

Why: the domain watches now take those line numbers in one pass and share each domain's first
offset with the secret detectors; which lines are read, and which tenants own a secret, must not change.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.detection.engine import (
    Deadline,
    Detector,
    Hit,
    WatchSnapshot,
    _unicode_host_line_numbers,
    _unicode_host_line_numbers_py,
    _unicode_host_lines,
)
from pipelines.detection.lines import LineIndex

PIECES = [
    "张伟,13800138000,zhang@qq.com，备注",
    "user@qq.com",
    "TG@seller30 出售",
    "mail：li@ｑｑ.com",
    "a＠qq.com 中",
    "x@bücher.example",
    'json {"mail": "a\\u0040b.cn"} 中',
    "\\ path 中 @",
    "plain ascii line",
    "中文一行",
    "@",
    "ü@ü",
    "",
]


def _reference(text: str) -> list[int]:
    index = LineIndex(text)
    return sorted({index.line_of(p) for p in _unicode_host_lines(text, Deadline.after(30))})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=10)), max_size=30))
def test_line_numbers_are_those_of_the_lines_yielded(pieces: list[str]) -> None:
    text = "\n".join(pieces)
    expected = _reference(text)
    assert _unicode_host_line_numbers(text, Deadline.after(30)) == expected  # native when built
    assert _unicode_host_line_numbers_py(text, Deadline.after(30)) == expected


_AT_SIGNS = st.text(alphabet="@\uff20\ufe6b\\.-_aZ09 :/é中\n\U00020000", max_size=40)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_AT_SIGNS)
def test_at_signs_host_characters_and_backslashes_in_any_order(text: str) -> None:
    """The characters the native pass tells apart, densely mixed (every kind of str)."""
    expected = _reference(text)
    assert _unicode_host_line_numbers(text, Deadline.after(30)) == expected
    assert _unicode_host_line_numbers_py(text, Deadline.after(30)) == expected


def test_the_native_pass_is_used_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent fall back to the Python path would pass every equality test above."""
    from pipelines.detection import engine
    from pipelines.detection.lines import native_text

    if native_text is None:
        pytest.skip("the extension is not built")

    def python_path(*_args: object) -> list[int]:
        raise AssertionError("the Python path ran")

    monkeypatch.setattr(engine, "_unicode_host_line_numbers_py", python_path)
    text = "备注 x@ｑｑ.com\nplain\n中 a@b.example \\"
    assert _unicode_host_line_numbers(text, Deadline.after(30)) == [1, 3] == _reference(text)


def test_line_numbers_on_a_long_dump() -> None:
    rng = random.Random(3)
    text = "\n".join(rng.choice(PIECES) for _ in range(5000))
    numbers = _unicode_host_line_numbers(text, Deadline.after(30))
    assert len(numbers) > 1000
    assert numbers == _reference(text)


class NoRecords:
    def lookup(self, hashes: Sequence[str]) -> list[Hit]:
        return []


def test_secret_owners_from_the_first_looks_are_the_domains_named() -> None:
    snapshot = WatchSnapshot(
        tenants={1: "acme", 2: "tencent", 3: "books"},
        regions=("CN",),
        domains=[(1, "acme.example", 11), (2, "qq.com", 21), (3, "bücher.example", 31)],
    )
    detector = Detector(bytes(32), NoRecords(), snapshot)
    key = "AKIA" + "Z7QW3RTY5UIO2PLK"
    owners: set[int] = set()
    for text in (
        f"aws key {key} for admin@acme.example",
        f"aws key {key}\nmail zhang@qq.com 中文",
        f"aws key {key} nothing named",
        f"aws key {key} xn--bcher-kva.example and BÜCHER.example",
    ):
        lowered = text.lower()
        first: dict[str, int] = {}
        detector._domain_candidates(text, 30.0, lowered, first)
        assert first
        shared = detector._secrets(text, Deadline.after(30), lowered, None, first)
        alone = detector._secrets(text, Deadline.after(30), lowered)
        assert shared == alone
        owners.update(f.tenant_id for f in shared)
    assert owners == {1, 2, 3}


def test_the_cheap_classes_hold_the_same_characters() -> None:
    """`_HOST_CHAR` and `_NON_ASCII_CHAR` ("not these ASCII characters") against the ranges they replace."""
    import re
    import sys

    from pipelines.detection import engine

    pairs = [
        (re.compile("[A-Za-z0-9._\\-\u0080-\U0010ffff]"), re.compile(engine._HOST_CHAR)),
        (re.compile("[\u0080-\U0010ffff]"), re.compile(engine._NON_ASCII_CHAR)),
    ]
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        for former, cheap in pairs:
            assert bool(former.fullmatch(char)) == bool(cheap.fullmatch(char)), hex(code)
