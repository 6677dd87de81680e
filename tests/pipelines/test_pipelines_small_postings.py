"""Small postings (issue 12): the per-posting shortcuts give what the general paths gave.

Why: on postings of ~10 KB fixed per-call costs dominate detection; the shortcuts (a listing of one
field type, a listing that jumps through the scan's line starts, one needle's lines without a merge)
must never change a finding or a candidate.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.detection.engine import Detector, Hit, WatchSnapshot
from pipelines.detection.fastscan import HashedScanner, candidates_on_lines

KEY = bytes(range(32))

LINES = [
    "alice@acme.example:hunter2 phone 13812345678",
    "bob@QQ.com, id 110101199003074578, tel +86 138 1234 5678",
    "just words about qq.com and acme.example without an address",
    '{"email": "carol@qq.com", "phone": "13912345678", "name": "Carol"}',
    "dana@bücher.example 2024-01-02",
    "王伟 wang@qq.com 13700001111",
    "ｅｖｅ＠ｑｑ．ｃｏｍ full width",
    "frank@sub.acme.example; card 4111 1111 1111 1111",
    "no candidates here",
    "gina@example.org\\u0040 escaped",
    "wrapped value ending with hank@qq.",
    "com continues here",
]


class NoRecords:
    def lookup(self, hashes: Sequence[str]) -> list[Hit]:
        return []


def _text(rng: random.Random, count: int) -> str:
    return "\n".join(rng.choice(LINES) for _ in range(count))


@pytest.mark.parametrize("seed", range(6))
def test_a_listing_of_one_type_is_the_filtered_listing(seed: int) -> None:
    rng = random.Random(seed)
    text = _text(rng, 60)
    scanner = HashedScanner(KEY, ("CN",))
    scan = scanner.scan(text)
    numbers = set(rng.sample(range(1, 62), 25))
    full = scanner.hashed_candidates(text, numbers)
    for starts in (b"", scan.line_starts):
        assert scanner.hashed_candidates(text, numbers, line_starts=starts) == full
        for field_type in ("email", "phone", "national_id"):
            only = scanner.hashed_candidates(text, numbers, line_starts=starts, field_type=field_type)
            assert only == [item for item in full if item[0].field_type == field_type]
    assert [c for c, _ in full] == candidates_on_lines(text, numbers, ("CN",))


DOMAINS = [(1, "acme.example", 11), (2, "qq.com", 21), (1, "bücher.example", 12)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LINES), min_size=0, max_size=40), st.integers(0, 2))
def test_domain_candidates_through_the_line_starts_are_the_same(lines: list[str], skip: int) -> None:
    text = "\n".join(lines)
    snapshot = WatchSnapshot(tenants={1: "acme", 2: "tencent"}, regions=("CN",), domains=DOMAINS[skip:])
    detector = Detector(KEY, NoRecords(), snapshot)
    scan = detector.hasher.scan(text)
    first_a: dict[str, int] = {}
    first_b: dict[str, int] = {}
    plain = detector._domain_candidates(text, 30.0, text.lower(), first_a)
    jumped = detector._domain_candidates(text, 30.0, text.lower(), first_b, scan.line_starts)
    assert plain == jumped
    assert first_a == first_b
    assert detector._domains(plain, text) == detector._domains(jumped, text)


def test_detect_is_the_same_with_the_native_switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text(random.Random(7), 80)
    snapshot = WatchSnapshot(tenants={1: "acme", 2: "tencent"}, regions=("CN",), domains=DOMAINS)
    native = Detector(KEY, NoRecords(), snapshot).detect(text)
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    snapshot = WatchSnapshot(tenants={1: "acme", 2: "tencent"}, regions=("CN",), domains=DOMAINS)
    python = Detector(KEY, NoRecords(), snapshot).detect(text)
    assert native.findings == python.findings
    assert sorted(native.findings, key=repr)  # the text names watched domains


@pytest.mark.parametrize("value", [None, "0", "1", "", "00", " 0", "no"])
def test_the_native_switch_reads_the_environment_at_every_call(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    import os

    from pipelines.detection.lines import native_switched_on

    if value is None:
        monkeypatch.delenv("LEAKSENTINEL_NATIVE_SCAN", raising=False)
    else:
        monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", value)
    expected = os.environ.get("LEAKSENTINEL_NATIVE_SCAN", "1") != "0"
    assert native_switched_on() is expected
    # an environment replaced by a plain mapping is read through it
    monkeypatch.setattr(os, "environ", {} if value is None else {"LEAKSENTINEL_NATIVE_SCAN": value})
    assert native_switched_on() is expected


def test_every_stage_follows_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import fingerprint, normalize
    from pipelines.detection import documents, fastscan

    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    assert not fingerprint.native_available()
    assert not documents.native_available()
    assert not fastscan.native_available()
    assert normalize.normalize_text("a\r\nb\x00", 100) == "a\nb "
    monkeypatch.delenv("LEAKSENTINEL_NATIVE_SCAN")
    assert fastscan.native_available() is (fastscan._scanner is not None)
    assert fingerprint.native_available() is (fingerprint._native is not None)


@pytest.mark.parametrize("seed", range(20))
def test_hit_lines_of_a_few_rows_equal_numpy_grouping(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    import numpy as np

    from pipelines.detection import engine
    from pipelines.detection.fastscan import HashedScan

    rng = random.Random(seed)
    distinct = [rng.randbytes(16) for _ in range(rng.randint(1, 12))]
    # a digest may stand twice in `digests` (the scanner hashes in chunks)
    digests = distinct + [rng.choice(distinct) for _ in range(rng.randint(0, 3))]
    pairs = np.array(
        [(rng.randrange(len(digests)), rng.randint(1, 30)) for _ in range(rng.randint(1, 120))],
        dtype=np.uint32,
    )
    scan = HashedScan(b"".join(digests), pairs)
    mask = np.array([rng.random() < 0.6 for _ in digests], dtype=bool)
    mask[pairs[0, 0]] = True
    few = engine.Detector._hit_lines(scan, mask)
    monkeypatch.setattr(engine, "_FEW_ROWS", -1)
    many = engine.Detector._hit_lines(scan, mask)
    assert list(few) == list(many)
    for digest in many:
        assert few[digest].dtype == many[digest].dtype
        assert few[digest].tolist() == many[digest].tolist()


@pytest.mark.parametrize("seed", range(30))
def test_union_is_numpy_union1d(seed: int) -> None:
    import numpy as np

    from pipelines.detection import engine

    rng = random.Random(seed)
    for dtype in (np.uint32, np.int64):
        a = np.array(sorted(rng.randint(0, 40) for _ in range(rng.randint(1, 30))), dtype=dtype)
        b = np.array([rng.randint(0, 40) for _ in range(rng.randint(1, 30))], dtype=dtype)
        got = engine._union(a, b)
        assert got.dtype == np.union1d(a, b).dtype and got.tolist() == np.union1d(a, b).tolist()


_NO_MASKED_ARRAYS = """
import sys
import numpy as np
from pipelines.detection import engine
from pipelines.detection.fastscan import HashedScan
digest = bytes(range(16))
pairs = np.array([(0, 3), (1, 2), (0, 1), (1, 3)] * 10, dtype=np.uint32)
for few in (256, -1):
    engine._FEW_ROWS = few
    out = engine.Detector._hit_lines(HashedScan(digest * 2, pairs), np.array([True, True]))
    assert out[digest.hex()].tolist() == [1, 2, 3], out
print("numpy.ma" in sys.modules)
"""


def test_grouping_hit_lines_imports_no_masked_arrays() -> None:
    """`np.union1d` imported numpy.ma on its first call: ~10 ms of every fresh `scan`'s first posting."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _NO_MASKED_ARRAYS], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]


def test_each_unicode_host_search_starts_with_the_character_checked_first() -> None:
    import re

    from pipelines.detection import engine

    assert len(engine._LINE_SEARCH_FIRST) == len(engine._LINE_SEARCHES)
    for first, pattern in zip(engine._LINE_SEARCH_FIRST, engine._LINE_SEARCHES, strict=True):
        assert len(first) == 1 and pattern.pattern.startswith(re.escape(first))
