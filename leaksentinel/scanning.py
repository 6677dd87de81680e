"""``leaksentinel scan``: the crawl pipeline's detection, run on local files.

Why the same stages: a finding from ``scan`` must be exactly what a crawl of the same text would
find, and ``--store`` must raise alerts exactly as a crawl would, so it calls the pipeline stages.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.db import open_database
from core.errors import BadInput
from core.posting import PostingDraft
from core.settings import Settings
from pipelines.ingest import Ingest
from pipelines.store import LOCAL_SOURCE

__all__ = ["scan_paths"]


def _read(path: str, limit: int) -> bytes:
    p = Path(path)
    if not p.exists():
        raise BadInput(f"no such file: {path}")
    if p.is_dir():
        raise BadInput(f"{path} is a directory (give files)")
    with p.open("rb") as fh:
        return fh.read(limit)


#: glibc's mallopt parameters (malloc.h) and the values `scan` sets: blocks up to 32 MB come from the heap
#: (a posting's largest buffer is a few MB; a 50 MB posting's are still mapped), and up to 256 MB of freed
#: heap stays in the process.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_ALLOCATOR = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 256 << 20), (_M_TOP_PAD, 64 << 20))


@functools.lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Keep freed memory for the next file instead of handing it back to the system (glibc only; True
    when every setting took).

    Why: each posting's buffers (its text, lowered, folded, UTF-8, the scanner's and winnowing's
    arrays) are a few MB. By default glibc maps the largest anew for each posting and trims the heap
    after them, so a fresh `scan` process faulted in fresh pages file after file: its detection ran about
    10-20% slower than a process's second scan, and these settings took back about 5% of a 20 MB scan's
    CPU (median of 9 paired fresh runs). `scan` is a short-lived process; the service does not set them."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in _ALLOCATOR)


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """The objects made so far (the detector's matchers, the database's mappings) out of the cyclic
    garbage collector's reach while the files are scanned: its full collections would walk them again
    and again (about 2% of a scan's CPU), and none of them is garbage before the scan ends.

    In a process that froze its heap before (the command line's boot froze its modules), everything
    stays frozen: ``gc.unfreeze`` cannot tell our objects from the earlier ones, and once every module
    was back in the collector's reach, the interpreter's collections at exit walked them all: about 0.3
    of the ~1.1 CPU-s `scan` of a small file took."""
    frozen_before = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()


def scan_paths(
    settings: Settings, paths: list[str], *, store: bool = False, stats: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the contract's finding objects, file by file, in order.

    ``stats``, when given, is filled once the last file is read: postings, bytes, CPU seconds of detection,
    partial scans, and the lines the native scanner handed back to Python (``deferred_lines``) and those
    the Python extractor read (``python_lines``): what shows whether a corpus stays on the fast path."""
    for path in paths:  # every path is checked before any is scanned
        if not Path(path).is_file():
            _read(path, 0)
    tune_allocator()
    with Ingest(settings, open_database(settings)) as ingest, _frozen_heap():
        size = 0
        cpu = 0.0
        for path in paths:
            draft = PostingDraft(
                source=LOCAL_SOURCE,
                url=path,
                raw=_read(path, settings.max_posting_bytes),
                title=Path(path).name,
            )
            size += len(draft.raw or b"")
            started = time.process_time()
            # findings never read the fingerprint, nor the hashes of a type no tenant registered
            ingest.detect(draft, fingerprint=store, candidates=store)
            cpu += time.process_time() - started
            if draft.partial:
                sys.stderr.write(
                    f"leaksentinel: warning: {path}: detection hit its time limit; the end of the file was not read\n"
                )
            if store:
                ingest.store(draft)
            for finding in draft.findings:
                yield finding.as_json(path)
        if stats is not None:
            totals = ingest.detector.stats
            stats.update(
                postings=totals.postings,
                bytes=size,
                cpu_s=round(cpu, 3),
                partial=totals.partial,
                deferred_lines=totals.deferred_lines,
                python_lines=totals.python_lines,
            )
