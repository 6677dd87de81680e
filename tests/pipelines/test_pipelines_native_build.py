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
    if os.environ.get("LEAKSENTINEL_REQUIRE_NATIVE") != "1":
        pytest.skip("LEAKSENTINEL_REQUIRE_NATIVE=1 is set by CI only")
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
