"""Regex watches: tenants' patterns, run with RE2 so no pattern can take more than linear time.

Why RE2 and a Set: a tenant-supplied regex is hostile input (``(a+)+$`` would stall a backtracking
engine for ever); RE2 runs in time linear in the text, and rejects what it cannot do that way
(backreferences, lookaround). An ``re2.Set`` tells which patterns match a block of text in one pass, so
the individual patterns only run where they are known to match.

Semantics: a pattern matches within one line (split on "\\n", a trailing "\\r" dropped), and ``^`` and
``$`` anchor at line ends. The text is read whole, as UTF-8 bytes in blocks of about 1 MB cut on line
ends, compiled with ``never_nl`` (no match can hold a "\\n") and multi-line mode, which gives exactly
the per-line answers without a Python call per line: 20 MB of empty lines costs one RE2 pass. The few
patterns that need a line as their whole text (``\\A``, ``\\z``, ``\\C``, multi-line mode switched off)
keep the per-line reading. The per-posting deadline is looked at between blocks.

Usage::

    compile_watch_regex(r"ACME-\\d{6}")          # a compiled RE2 pattern, or BadInput
    RegexMatcher([(tenant_id, watch_id, r"ACME-\\d{6}")]).find(text)  # [RegexHit(...), ...]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import re2

from core.errors import BadInput
from pipelines.detection.lines import BLOCK_CHARS, Deadline, line_blocks

__all__ = [
    "CHUNK_CHARS",
    "MAX_MATCHED_CHARS",
    "MAX_PATTERN_CHARS",
    "MAX_TEXT_CHARS",
    "LineChunk",
    "RegexHit",
    "RegexMatcher",
    "compile_watch_regex",
    "encode_text",
    "first_match",
    "iter_line_chunks",
    "re2_options",
    "scrub",
    "text_blocks",
    "text_options",
    "whole_text_pattern",
]

MAX_PATTERN_CHARS = 1024
MAX_TEXT_CHARS = 50_000_000
CHUNK_CHARS = 1_000_000  # longer lines are scanned in chunks of this size...
CHUNK_OVERLAP = 4096  # ...overlapping so a match across a chunk border is usually still seen
MAX_MATCHED_CHARS = 200  # a reported match is cut to this (``.*`` can match a whole line)
PATTERN_MAX_MEM = 8 << 20  # RE2 memory bound for one compiled pattern
SET_MAX_MEM = 64 << 20  # and for one Set (its DFA); a Set that runs out silently misses matches...
SET_SHARD = 256  # ...so patterns are spread over Sets of at most this many

Pattern = Any  # re2 ships no type information


@dataclass(frozen=True)
class RegexHit:
    """A regex watch's first match in a posting: 1-based line and the matched text (cut to 200 chars)."""

    tenant_id: int
    watch_id: int
    pattern: str
    line: int
    matched: str


def re2_options(max_mem: int = PATTERN_MAX_MEM) -> Any:
    """RE2 options with a memory bound and no logging to stderr (a rejected pattern is not an error here)."""
    options = re2.Options()
    options.max_mem = max_mem
    options.log_errors = False
    return options


def _reason(error: Exception) -> str:
    """RE2's message without the bytes repr the binding wraps it in."""
    arg = error.args[0] if error.args else error
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def compile_watch_regex(pattern: str) -> Pattern:
    """Compile a tenant's pattern with RE2, or raise BadInput saying why it cannot be a watch."""
    if not pattern:
        raise BadInput("regex is empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise BadInput(f"regex rejected by RE2: longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re2.compile(pattern, re2_options())
    except re2.error as exc:
        raise BadInput(f"regex rejected by RE2: {_reason(exc)}") from None
    if compiled.search("") is not None:
        raise BadInput("regex rejected: it matches the empty string, so it would fire on every posting")
    return compiled


def scrub(text: str) -> str:
    """`text` made encodable as UTF-8 (lone surrogates replaced), which RE2 needs."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


@dataclass(frozen=True)
class LineChunk:
    """A line, or a piece of a very long one; `cut_start`/`cut_end` say the piece was cut there."""

    line: int
    text: str
    cut_start: bool = False
    cut_end: bool = False

    def holds(self, start: int, end: int) -> bool:
        """False for a match touching a cut: ``^``, ``$`` or ``\\b`` may have matched only because of
        the cut, and a genuine match there is also seen whole in the overlapping neighbour piece."""
        return not ((self.cut_start and start == 0) or (self.cut_end and end == len(self.text)))


def iter_line_chunks(text: str, max_chars: int = MAX_TEXT_CHARS) -> Iterator[LineChunk]:
    """Lines split on "\\n" (a trailing "\\r" dropped), very long ones as overlapping chunks."""
    for lineno, line in enumerate(scrub(text[:max_chars]).split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if len(line) <= CHUNK_CHARS:
            yield LineChunk(lineno, line)
            continue
        for start in range(0, len(line), CHUNK_CHARS):
            lo, hi = max(0, start - CHUNK_OVERLAP), start + CHUNK_CHARS
            yield LineChunk(lineno, line[lo:hi], cut_start=lo > 0, cut_end=hi < len(line))


def first_match(compiled: Pattern, chunk: LineChunk) -> Any:
    """The first match of `compiled` in `chunk` that does not owe itself to a cut, or None."""
    match = compiled.search(chunk.text)
    if match is not None and not chunk.holds(match.start(), match.end()) and match.start() == 0:
        match = compiled.search(chunk.text, 1)
    if match is None or not chunk.holds(match.start(), match.end()):
        return None
    return match


def build_sets(patterns: list[str], options: Any) -> list[tuple[int, Any]]:
    """Compiled ``re2.Set`` shards as (index of the shard's first pattern, set)."""
    shards = []
    for base in range(0, len(patterns), SET_SHARD):
        regex_set = re2.Set.SearchSet(options)
        for pattern in patterns[base : base + SET_SHARD]:
            regex_set.Add(pattern)
        regex_set.Compile()
        shards.append((base, regex_set))
    return shards


def set_matches(shards: list[tuple[int, Any]], text: str | bytes) -> list[int]:
    """Indices of the patterns that match somewhere in `text`."""
    found: list[int] = []
    for base, regex_set in shards:
        found.extend(base + i for i in regex_set.Match(text) or ())
    return found


# --------------------------------------------------------------------------- whole-text reading

# A pattern that needs a line to be its whole text: \A, \z, \C (any byte, "\n" included), or a flag
# group that switches multi-line mode off. A false alarm (an escaped backslash) only costs speed.
_LINE_BOUND = re.compile(r"\\[ACz]|\(\?[A-Za-z]*-[A-Za-z]*m")


def whole_text_pattern(pattern: str) -> str | None:
    """`pattern` for a whole-text pass (``^``/``$`` at line ends), or None when only a per-line pass
    gives the per-line answers."""
    return None if _LINE_BOUND.search(pattern) else "(?m)" + pattern


def text_options(max_mem: int = PATTERN_MAX_MEM) -> Any:
    """`re2_options` for whole-text passes: no match may hold a newline (classes like ``\\s`` lose it)."""
    options = re2_options(max_mem)
    options.never_nl = True
    return options


def encode_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> bytes:
    """The UTF-8 a whole-text pass reads: lone surrogates replaced (as `scrub`), each line's trailing
    "\\r" dropped (as `iter_line_chunks`)."""
    buf = text[:max_chars].encode("utf-8", "replace")
    if b"\r" in buf:
        buf = buf.replace(b"\r\n", b"\n")
        if buf.endswith(b"\r"):
            buf = buf[:-1]
    return buf


def text_blocks(buf: bytes, deadline: Deadline | None) -> Iterator[tuple[int, bytes]]:
    """(1-based line of its start, block) over `buf`, stopping once `deadline` has passed."""
    line = 1
    previous = b""  # the block before: its newlines are counted only when another block follows
    for start, end in line_blocks(buf, BLOCK_CHARS):
        if deadline is not None and deadline.expired():
            return
        line += previous.count(b"\n")
        previous = buf if start == 0 and end == len(buf) else buf[start:end]
        yield line, previous


#: A block of `text_blocks` with the patterns matching in it: (1-based line of its start, its offset in
#: the buffer, the block, the matching patterns' indexes).
BlockMatch = tuple[int, int, bytes, list[int]]


def block_matches(buf: bytes, deadline: Deadline | None, shards: list[tuple[int, Any]]) -> list[BlockMatch]:
    """Every block of `text_blocks` in which some pattern of `shards` matches: one Set pass over the
    buffer that several stages split between them (the regex watches and the secret detectors read the
    same buffer: one pass costs what each of two did)."""
    out: list[BlockMatch] = []
    line, start = 1, 0
    for line, block in text_blocks(buf, deadline):
        found = set_matches(shards, block)
        if found:
            out.append((line, start, block, found))
        start += len(block)
    return out


def split_block_matches(blocks: list[BlockMatch], first: int) -> tuple[list[BlockMatch], list[BlockMatch]]:
    """The blocks of patterns below `first`, and those of the rest (renumbered from 0): the two stages'
    shares of one `block_matches` pass over their patterns concatenated."""
    low: list[BlockMatch] = []
    high: list[BlockMatch] = []
    for line, start, block, found in blocks:
        below = [i for i in found if i < first]
        above = [i - first for i in found if i >= first]
        if below:
            low.append((line, start, block, below))
        if above:
            high.append((line, start, block, above))
    return low, high


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


@dataclass(frozen=True)
class _Watch:
    tenant_id: int
    watch_id: int
    pattern: str


class RegexMatcher:
    """All tenants' regex watches: a Set to find the matching blocks, then each pattern for its text."""

    def __init__(self, items: Iterable[tuple[int, int, str]]) -> None:
        by_pattern: dict[str, list[_Watch]] = {}
        for tenant_id, watch_id, pattern in items:
            bucket = by_pattern.setdefault(pattern, [])
            watch = _Watch(tenant_id, watch_id, pattern)
            if watch not in bucket:
                bucket.append(watch)
        self._patterns = list(by_pattern)
        self._watches = [tuple(by_pattern[p]) for p in self._patterns]
        self._compiled = [compile_watch_regex(p) for p in self._patterns]
        # whole-text forms, and the per-line rest
        self._whole: list[int] = []
        whole_patterns: list[str] = []
        self._text_compiled: dict[int, Pattern] = {}
        options = text_options()
        for index, pattern in enumerate(self._patterns):
            text_pattern = whole_text_pattern(pattern)
            if text_pattern is not None:
                self._whole.append(index)
                whole_patterns.append(text_pattern)
                self._text_compiled[index] = re2.compile(text_pattern.encode("utf-8"), options)
        self._per_line = [i for i in range(len(self._patterns)) if i not in self._text_compiled]
        self._shards = build_sets(whole_patterns, text_options(SET_MAX_MEM)) if whole_patterns else []
        #: The whole-text patterns, in the order `find`'s ``matched`` numbers them.
        self.whole_patterns = tuple(whole_patterns)

    def __len__(self) -> int:
        """Number of distinct patterns."""
        return len(self._patterns)

    def find(
        self,
        text: str,
        deadline: Deadline | None = None,
        *,
        encoded: bytes | None = None,
        matched: list[BlockMatch] | None = None,
    ) -> list[RegexHit]:
        """One hit per (tenant, watch): the first line its pattern matches, with the matched text.

        ``encoded``: ``encode_text(text)`` when the caller has it already (the secret detectors read it too).
        ``matched``: the blocks of ``encoded`` where `whole_patterns` match (`block_matches`), when a
        shared pass found them already. Past `deadline` the rest of the text is not read (the deadline
        then says ``exceeded``)."""
        if not self._patterns or not text:
            return []
        first: dict[int, tuple[int, str]] = {}  # pattern index -> (line, matched text)
        if self._whole:
            pending = set(self._whole)
            buf = encode_text(text) if encoded is None else encoded
            blocks: Iterable[tuple[int, bytes, list[int]]] = (
                ((line, block, found) for line, _start, block, found in matched)
                if matched is not None
                else (
                    (line, block, set_matches(self._shards, block))
                    for line, block in text_blocks(buf, deadline)
                )
            )
            for line, block, found in blocks:
                for index in sorted(self._whole[i] for i in found):
                    if index not in pending:
                        continue
                    match = self._text_compiled[index].search(block)
                    if match is not None:
                        pending.discard(index)
                        number = line + block.count(b"\n", 0, match.start())
                        first[index] = (number, _text(match.group(0))[:MAX_MATCHED_CHARS])
                if not pending:
                    break
        if self._per_line:
            first.update(self._find_per_line(text, deadline))
        hits: list[RegexHit] = []
        for index, (line, value) in sorted(first.items(), key=lambda item: (item[1][0], item[0])):
            hits.extend(
                RegexHit(w.tenant_id, w.watch_id, w.pattern, line, value) for w in self._watches[index]
            )
        return hits

    def _find_per_line(self, text: str, deadline: Deadline | None) -> dict[int, tuple[int, str]]:
        """The patterns that need a line as their whole text, read line by line."""
        pending = list(self._per_line)
        first: dict[int, tuple[int, str]] = {}
        for count, chunk in enumerate(iter_line_chunks(text)):
            if deadline is not None and count % 1024 == 0 and deadline.expired():
                break
            for index in list(pending):
                match = first_match(self._compiled[index], chunk)
                if match is not None:
                    pending.remove(index)
                    first[index] = (chunk.line, match.group(0)[:MAX_MATCHED_CHARS])
            if not pending:
                break
        return first
