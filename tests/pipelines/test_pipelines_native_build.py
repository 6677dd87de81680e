"""The native scanner is built where CI requires it, and the pure-Python path gives the same hashes."""

from __future__ import annotations

import os

import pytest

from pipelines.detection import fastscan

KEY = bytes(range(32))
TEXT = "\n".join(
    [
        "alice@example.com:hunter2",
        "姓名：张三 电话：138-0013-8000 身份证：11010519491231002X",
        "INSERT INTO users VALUES (1,'Bob Smith','bob@example.org','+86 139 0013 9000');",
        '{"name": "李四", "mobile": "13912345678", "card": "6222021234567890128"}',
        "2024-05-12 10:30:45,123 INFO user=carol email=carol@example.net status=200",
        "GB82 WEST 1234 5698 7654 32;078-05-1120;1990年5月12日",
        "plain prose without structure",
        "café|münchen|naïve@example.com",  # deferred to extract.py (Latin letters outside the allowlist)
    ]
)


def test_native_scanner_is_built_where_required() -> None:
    if os.environ.get("LEAKSENTINEL_TEST_REQUIRE_NATIVE") != "1":
        pytest.skip("LEAKSENTINEL_TEST_REQUIRE_NATIVE=1 is set by CI only")
    assert fastscan.native_available(), "the C extension pipelines.detection._scanner did not build"
    assert fastscan.sha_implementation() in ("sha-ni", "portable")


def _pairs(scan: fastscan.HashedScan) -> set[tuple[bytes, int]]:
    return {(scan.digests[16 * int(i) : 16 * int(i) + 16], int(line)) for i, line in scan.pairs}


@pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")
def test_pure_python_path_gives_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    native = fastscan.HashedScanner(KEY, ("CN", "GB")).scan(TEXT)
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    python_scanner = fastscan.HashedScanner(KEY, ("CN", "GB"))
    assert not python_scanner.native
    python = python_scanner.scan(TEXT)
    assert _pairs(native) == _pairs(python)
    assert native.unique_sorted() == python.unique_sorted()
    assert len(native.pairs) > 20


@pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")
def test_listed_candidates_equal_extract_py_on_the_same_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = set(range(1, TEXT.count("\n") + 2))
    native = fastscan.candidates_on_lines(TEXT, lines, ("CN",))
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    python = fastscan.candidates_on_lines(TEXT, lines, ("CN",))
    assert native == python  # same candidates, same order, same raw text


@pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")
@pytest.mark.parametrize("count", [0, 1, 7, 1000, 40_000])
def test_digests_sort_to_distinct_byte_order(count: int) -> None:
    import numpy as np

    from pipelines.detection import _scanner

    rng = np.random.default_rng(count)
    body = rng.integers(0, 256, size=16 * count, dtype=np.uint8).tobytes()
    same_prefix = bytes(8) + b"\x02" * 8 + bytes(8) + b"\x01" * 8  # equal first halves, order by the second
    data = body + body[:48] + same_prefix
    records = [data[i : i + 16] for i in range(0, len(data), 16)]
    expected = sorted(set(records))
    assert _scanner.sort16(data) == b"".join(expected)


@pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")
def test_index_directory_lookup_equals_membership(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from pipelines.detection.index import MatchIndex

    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**64 - 1, size=100_000, dtype=np.uint64)
    index = MatchIndex(tmp_path)
    index.merge(values)
    queries = np.concatenate([values[:500], rng.integers(0, 2**64 - 1, size=5_000, dtype=np.uint64)])
    queries = np.concatenate([queries, np.array([0, 2**64 - 1], dtype=np.uint64)])
    assert (index.contains(queries) == np.isin(queries, values)).all()
