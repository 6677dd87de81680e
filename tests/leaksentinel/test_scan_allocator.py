"""`scan` keeps freed memory for the next file (glibc's mallopt), set once per process.

Why: a fresh `scan` process faulted in fresh pages for every posting's buffers (glibc maps the largest
anew and trims the heap after them): about 5% of a 20 MB scan's CPU.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from test_cli_startup import (
    _python,  # a fresh interpreter in the project's root (tests/leaksentinel is on the path)
)

import leaksentinel.scanning as scanning
from core.settings import load_settings

_MAPPED_AFTER_A_BLOCK = """
import ctypes, sys
import leaksentinel.scanning as scanning
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert scanning.tune_allocator() is True
block = bytearray(8 << 20)  # a posting's buffer: 8 MB
print(libc.mallinfo2().hblkhd >> 20)  # MB mapped apart from the heap
"""


def _mapped_mb(mode: str) -> int:
    return int(_python("-c", _MAPPED_AFTER_A_BLOCK, mode).stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_posting_sized_block_comes_from_the_heap_once_tuned() -> None:
    """glibc's default maps an 8 MB block apart (and unmaps it when freed: fresh pages for the next
    posting); tuned, it comes from the heap, which keeps it for the next one."""
    assert _mapped_mb("default") >= 8
    assert _mapped_mb("tuned") < 8


def test_scan_sets_it_before_reading_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(scanning, "tune_allocator", lambda: calls.append("tuned") or True)
    posting = tmp_path / "p.txt"
    posting.write_text("a@b.example:hunter2\n", encoding="utf-8")
    list(scanning.scan_paths(load_settings(), [str(posting)]))
    assert calls == ["tuned"]


def test_without_glibc_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    scanning.tune_allocator.cache_clear()
    monkeypatch.setattr(scanning.platform, "libc_ver", lambda: ("", ""))
    try:
        assert scanning.tune_allocator() is False
    finally:
        scanning.tune_allocator.cache_clear()
