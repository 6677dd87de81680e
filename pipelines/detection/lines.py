"""Whole-text helpers: a per-posting time budget, line numbers by offset, blocks cut on line ends.

Why: the keyword, regex and secret stages read a posting as one buffer (Aho-Corasick and RE2 run in C
over it) instead of one Python call per line, so 20 MB of empty lines costs what 20 MB of text costs in
C, not 20 million Python iterations. Line numbers are only needed for the few offsets that matched, so
they come from a coarse table of newline counts (one entry per few kB, bisected) and a count inside one
block, never from a list of every line. The stages share one :class:`Deadline` and stop between blocks
once it has passed; the deadline then remembers it was hit, which the engine reports as ``partial``.

Usage::

    deadline = Deadline.after(30.0)
    index = LineIndex(text)
    index.line_of(offset)          # 1-based line number of a str (or bytes) offset
    index.span(12)                 # (start, end) of line 12, without its "\\n"
    for start, end in line_blocks(text, 1 << 20):   # pieces that end on a "\\n" (or at the end)
        if deadline.expired():
            break
"""

from __future__ import annotations

import bisect
import importlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

#: The C extension's one-pass text helpers (lower, unicode_host_lines, ...), or None (an optional build).
native_text: Any
try:
    native_text = importlib.import_module("pipelines.detection._fingerprint")
except ImportError:  # pragma: no cover - no C compiler at install
    native_text = None

__all__ = [
    "BLOCK_CHARS",
    "Deadline",
    "LineIndex",
    "LineReader",
    "find_text",
    "line_blocks",
    "lower_text",
    "native_switched_on",
    "native_text",
    "utf8_size",
]

#: ``LEAKSENTINEL_NATIVE_SCAN=0`` switches every native path off (for comparison and diagnosis).
NATIVE_SWITCH = "LEAKSENTINEL_NATIVE_SCAN"


#: os.environ's own dict and the switch's key and "0" as it stores them (POSIX: bytes), read directly:
#: ``os.environ.get`` encodes the key and decodes the value, ~1 µs, and a posting asks ~15 times.
_ENVIRON: Any = getattr(os.environ, "_data", None)
_SWITCH_KEY: Any = os.environ.encodekey(NATIVE_SWITCH) if _ENVIRON is not None else None
_SWITCH_OFF: Any = os.environ.encodevalue("0") if _ENVIRON is not None else None


def native_switched_on() -> bool:
    """False when ``LEAKSENTINEL_NATIVE_SCAN=0``: read at every call, as tests switch it at run time; the
    one place every stage asks (fastscan, fingerprint, normalize, documents, look-alikes)."""
    if _ENVIRON is not None:
        return bool(_ENVIRON.get(_SWITCH_KEY) != _SWITCH_OFF)
    return os.environ.get(NATIVE_SWITCH, "1") != "0"


def lower_text(text: str) -> str:
    """``text.lower()``, the same str: natively for a text past ASCII, where CPython's full case mapping
    costs about 3-6 ns a character (a Chinese posting), against under 1 here."""
    if native_text is None or text.isascii() or not native_switched_on():
        return text.lower()
    result: str = native_text.lower(text)
    return result


#: Below this many characters to read, ``str.find`` is as fast as the native search (its call costs more).
NATIVE_FIND_CHARS = 4096


def find_text(text: str, needle: str, start: int = 0) -> int:
    """``text.find(needle, start)``, natively past a few thousand characters: CPython's search had gone
    over to its two-way algorithm on a posting, 1-2 GB/s, and each watched domain and keyword is looked
    for in every posting, mostly in vain (see ``find`` in _native/fingerprint.c)."""
    if native_text is None or len(text) - start < NATIVE_FIND_CHARS or not native_switched_on():
        return text.find(needle, start)
    found: int = native_text.find(text, needle, start)
    return found


def utf8_size(text: str) -> int | None:
    """``len(text.encode("utf-8"))`` without encoding it; None when the text holds a lone surrogate
    (it cannot be encoded) or the native helpers are not built."""
    if text.isascii():
        return len(text)
    if native_text is None or not native_switched_on():
        return None
    size: int = native_text.utf8_size(text)
    return None if size < 0 else size


#: Blocks the whole-text stages read between two looks at the clock.
BLOCK_CHARS = 1 << 20

_T = TypeVar("_T", str, bytes)


@dataclass
class Deadline:
    """A point on a clock after which the stages stop; ``exceeded`` says one of them stopped early."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    exceeded: bool = False

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def expired(self) -> bool:
        """True (and remembered as ``exceeded``) once the clock has passed the deadline."""
        if self.exceeded or self.clock() >= self.at:
            self.exceeded = True
        return self.exceeded

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())


def _newline(text: _T) -> _T:
    return "\n" if isinstance(text, str) else b"\n"


class LineIndex(Generic[_T]):
    """Line numbers of offsets in a str or bytes, from newline counts per ``step`` characters."""

    def __init__(self, text: _T, step: int = 4096) -> None:
        self.text: _T = text
        self.step = step
        self._nl: _T = _newline(text)
        counts = [0]
        total = 0
        for start in range(0, len(text), step):
            total += text.count(self._nl, start, start + step)
            counts.append(total)
        #: counts[i]: newlines before offset i * step
        self._before = counts

    def line_of(self, offset: int) -> int:
        """1-based number of the line holding `offset` (an offset on a "\\n" belongs to the line it ends)."""
        offset = max(0, min(offset, len(self.text)))
        block = offset // self.step
        return self._before[block] + self.text.count(self._nl, block * self.step, offset) + 1

    def line_start(self, number: int) -> int:
        """Offset where 1-based line `number` starts (len(text) past the last line)."""
        if number <= 1:
            return 0
        wanted = number - 1  # newlines before the line's start
        block = bisect.bisect_left(self._before, wanted) - 1
        if block < 0 or block >= len(self._before) - 1:
            return len(self.text)
        # the wanted newline is in [block * step, (block + 1) * step): binary search by counts
        lo, hi = block * self.step, min(len(self.text), (block + 1) * self.step)
        need = wanted - self._before[block]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.text.count(self._nl, block * self.step, mid) >= need:
                hi = mid
            else:
                lo = mid
        return hi  # the newline is at hi - 1

    def span(self, number: int) -> tuple[int, int]:
        """(start, end) offsets of 1-based line `number`, without its "\\n"."""
        start = self.line_start(number)
        end = self.text.find(self._nl, start)
        return start, end if end >= 0 else len(self.text)

    def line(self, number: int) -> _T:
        start, end = self.span(number)
        return self.text[start:end]


def line_blocks(text: _T, size: int = BLOCK_CHARS) -> Iterator[tuple[int, int]]:
    """(start, end) pieces of about `size` that end just after a "\\n" or at the end of the text.

    A line longer than `size` stays whole in one piece (the stages are linear in it anyway)."""
    nl = _newline(text)
    start = 0
    while start < len(text):
        cut = start + size
        if cut >= len(text):
            yield start, len(text)
            return
        end = text.find(nl, cut - 1)
        end = len(text) if end < 0 else end + 1
        yield start, end
        start = end


class LineReader:
    """Lines of a str by 1-based number: through a native scan's line starts (uint32 code point offsets)
    when it recorded them, else through a :class:`LineIndex` (never a list of every line)."""

    def __init__(self, text: str, starts: bytes = b"") -> None:
        self.text = text
        self._starts = memoryview(starts).cast("I") if starts and len(starts) % 4 == 0 else None
        self._index: LineIndex[str] | None = None

    @property
    def count(self) -> int:
        """How many lines the text has (one more than its newlines)."""
        if self._starts is not None:
            return len(self._starts)
        return self._lines().line_of(len(self.text))

    def line(self, number: int) -> str:
        """Line `number` without its "\\n" ("" past the end)."""
        if self._starts is not None and 0 < number <= len(self._starts):
            start = self._starts[number - 1]
            end = self.text.find("\n", start)
            return self.text[start : end if end >= 0 else len(self.text)]
        if number < 1:
            return ""
        return self._lines().line(number)

    def _lines(self) -> LineIndex[str]:
        if self._index is None:
            self._index = LineIndex(self.text)
        return self._index
