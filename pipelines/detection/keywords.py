"""Keyword watches: every tenant's keywords found in one pass over a posting.

Why one automaton: the cost of a scan must not grow with the number of tenants or keywords, so all
keywords of all tenants go into a single Aho-Corasick automaton, run in C over the folded text in
blocks of about 1 MB cut on line ends (no Python call per line: empty lines cost nothing); the line
of a hit comes from a newline count, and the per-posting deadline is looked at between blocks.
Keywords and text are folded the same way (NFKC + case-fold, ``core.canonical.fold``), which makes the
match case-insensitive and width-insensitive (``ＡＣＭＥ`` finds ``acme``). ASCII keywords match on word
boundaries (``acme`` does not fire inside ``acmeplex``); CJK keywords, written without spaces, match anywhere.

Usage::

    matcher = KeywordMatcher([(tenant_id, watch_id, "Acme"), (tenant_id, 8, "客户数据")])
    matcher.find(posting_text)  # [KeywordHit(tenant_id, watch_id, "Acme", line, excerpt), ...]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import ahocorasick

from core.canonical import fold
from core.errors import BadInput
from pipelines.detection.lines import BLOCK_CHARS, Deadline, LineIndex, find_text, line_blocks

__all__ = [
    "EXCERPT_CHARS",
    "MAX_KEYWORD_CHARS",
    "MAX_TEXT_CHARS",
    "KeywordHit",
    "KeywordMatcher",
    "normalize_keyword",
]

MAX_KEYWORD_CHARS = 256
#: Up to this many distinct keywords, each is found by `str.find` in C (a pass per keyword, and a keyword
#: found is not looked at again) instead of a Python step per automaton hit (one per occurrence of a keyword
#: already found, until every keyword is found).
FEW_KEYWORDS = 8
MAX_TEXT_CHARS = 50_000_000  # text beyond this is not read: a posting is hostile input
EXCERPT_CHARS = 60


@dataclass(frozen=True)
class KeywordHit:
    """A keyword watch's first occurrence in a posting (1-based line, up to 60 chars of context)."""

    tenant_id: int
    watch_id: int
    keyword: str
    line: int
    excerpt: str


@dataclass(frozen=True)
class _Entry:
    tenant_id: int
    watch_id: int
    keyword: str


def normalize_keyword(keyword: str) -> str:
    """The folded form a keyword is matched in; raises BadInput for an empty or overlong keyword."""
    stripped = keyword.strip()
    if not stripped:
        raise BadInput("keyword is empty")
    if len(stripped) > MAX_KEYWORD_CHARS:
        raise BadInput(f"keyword longer than {MAX_KEYWORD_CHARS} characters")
    return fold(stripped)


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _on_boundaries(norm_line: str, start: int, end: int, folded: str) -> bool:
    """True unless an ASCII-alphanumeric end of the keyword touches another ASCII letter or digit."""
    if _is_word_char(folded[0]) and start > 0 and _is_word_char(norm_line[start - 1]):
        return False
    return not (_is_word_char(folded[-1]) and end < len(norm_line) and _is_word_char(norm_line[end]))


def _excerpt(line: str, norm_line: str, start: int, end: int) -> str:
    """About 60 characters of the original line around the match.

    Folding can change a line's length (``ß`` → ``ss``), so offsets in the folded line are mapped back
    proportionally: exact for ASCII and full-width text, close enough for the rest.
    """
    if len(norm_line) != len(line) and norm_line:
        ratio = len(line) / len(norm_line)
        start, end = int(start * ratio), max(int(start * ratio) + 1, round(end * ratio))
    if end - start >= EXCERPT_CHARS:
        return line[start : start + EXCERPT_CHARS].strip()
    pad = (EXCERPT_CHARS - (end - start)) // 2
    lo = max(0, start - pad)
    hi = min(len(line), lo + EXCERPT_CHARS)
    lo = max(0, hi - EXCERPT_CHARS)
    return line[lo:hi].strip()


class KeywordMatcher:
    """All tenants' keyword watches in one Aho-Corasick automaton over folded text."""

    def __init__(self, items: Iterable[tuple[int, int, str]]) -> None:
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, list[_Entry]] = {}
        for tenant_id, watch_id, keyword in items:
            bucket = entries.setdefault(normalize_keyword(keyword), [])
            entry = _Entry(tenant_id, watch_id, keyword)
            if entry not in bucket:
                bucket.append(entry)
        for folded, bucket in entries.items():
            self._automaton.add_word(folded, (folded, tuple(bucket)))
        self._size = len(entries)
        #: With a few keywords, each is looked for by `str.find` (see `_find_few`), not the automaton.
        self._few: tuple[tuple[str, tuple[_Entry, ...]], ...] | None = (
            tuple((folded, tuple(bucket)) for folded, bucket in entries.items())
            if len(entries) <= FEW_KEYWORDS
            else None
        )
        if self._size:
            self._automaton.make_automaton()

    def __len__(self) -> int:
        """Number of distinct folded keywords."""
        return self._size

    def find(
        self,
        text: str,
        deadline: Deadline | None = None,
        *,
        folded: str | None = None,
        folded_here: bool = False,
    ) -> list[KeywordHit]:
        """One hit per (tenant, watch): the first line its keyword appears on.

        ``folded``: ``fold(text[:MAX_TEXT_CHARS])`` when the caller has it already (the document watches
        fold the whole text too): folding is then not done again. Folding is local to a line (no
        character folds to or from a line end, and NFKC never joins characters across one), so the
        folded text cut into blocks on line ends is the blocks folded one by one. A `folded` with other
        line ends than the text's is not read (the text is folded again); ``folded_here``: the caller
        made `folded` by that very call, whose line ends are the text's (tests check every code point),
        so the two are not counted.
        Past `deadline` the rest of the text is not read (the deadline then says ``exceeded``)."""
        if not self._size or not text:
            return []
        text = text[:MAX_TEXT_CHARS]
        if folded is not None and (folded_here or folded.count("\n") == text.count("\n")):
            return self._find_folded(text, folded, deadline)
        hits: list[KeywordHit] = []
        done: set[str] = set()
        line = 1
        for start, end in line_blocks(text, BLOCK_CHARS):
            if deadline is not None and deadline.expired():
                break
            block = text[start:end]
            folded = fold(block)
            if folded.count("\n") == block.count("\n"):
                self._find_in_block(_block_lines(block), folded, line, done, hits, deadline)
            else:  # folding moved a line end (no known character does): fold line by line
                for number, piece in enumerate(block.split("\n"), line):
                    self._find_in_block(_block_lines(piece), fold(piece), number, done, hits, deadline)
            if len(done) == self._size:
                break
            line += block.count("\n")
        return hits

    def _find_folded(self, text: str, folded: str, deadline: Deadline | None) -> list[KeywordHit]:
        """`find` over a text folded whole (with as many line ends as `text`): blocks of the folded
        text, the excerpt's original line read by its number."""
        hits: list[KeywordHit] = []
        done: set[str] = set()
        index: list[LineIndex[str]] = []

        def original(number: int) -> str:
            if not index:
                index.append(LineIndex(text))
            return index[0].line(number)

        line = 1
        previous = ""  # the block before: its newlines are counted only when another block follows
        for start, end in line_blocks(folded, BLOCK_CHARS):
            if deadline is not None and deadline.expired():
                break
            line += previous.count("\n")
            block = previous = folded[start:end]
            self._find_in_block(
                functools.partial(_shifted, original, line), block, line, done, hits, deadline
            )
            if len(done) == self._size:
                break
        return hits

    def _find_in_block(
        self,
        original_line: Callable[[int], str],
        folded: str,
        line: int,
        done: set[str],
        hits: list[KeywordHit],
        deadline: Deadline | None,
    ) -> None:
        """Hits of keywords not yet `done` in a block of whole lines starting at 1-based `line`;
        `original_line(n)`: the block's n-th line (1-based) as the posting wrote it."""
        if self._few is not None:
            self._find_few(original_line, folded, line, done, hits)
            return
        folded_lines: LineIndex[str] | None = None
        for count, (end_index, (keyword, bucket)) in enumerate(self._automaton.iter(folded), 1):
            if keyword in done:
                if count % 65536 == 0 and deadline is not None and deadline.expired():
                    return
                continue
            start, end = end_index - len(keyword) + 1, end_index + 1
            if folded_lines is None:
                folded_lines = LineIndex(folded)
            number = folded_lines.line_of(start)
            line_start, line_end = folded_lines.span(number)
            if end > line_end:
                continue  # a keyword holding a line end: a line alone never shows it
            norm_line = folded[line_start:line_end]
            if not _on_boundaries(norm_line, start - line_start, end - line_start, keyword):
                continue
            done.add(keyword)
            excerpt = _excerpt(original_line(number), norm_line, start - line_start, end - line_start)
            lineno = line + number - 1
            hits.extend(KeywordHit(e.tenant_id, e.watch_id, e.keyword, lineno, excerpt) for e in bucket)
            if len(done) == self._size:
                return

    def _find_few(
        self,
        original_line: Callable[[int], str],
        folded: str,
        line: int,
        done: set[str],
        hits: list[KeywordHit],
    ) -> None:
        """`_find_in_block` by `str.find`: each keyword's first occurrence on a line and on word
        boundaries, then the hits in the automaton's order (by end offset, the longest keyword first)."""
        assert self._few is not None
        folded_lines: LineIndex[str] | None = None
        found: list[tuple[int, int, int, int, str, tuple[_Entry, ...]]] = []
        for keyword, bucket in self._few:
            if keyword in done:
                continue
            start = find_text(folded, keyword)
            while start >= 0:
                end = start + len(keyword)
                if folded_lines is None:
                    folded_lines = LineIndex(folded)
                number = folded_lines.line_of(start)
                line_start, line_end = folded_lines.span(number)
                if end <= line_end and _on_boundaries(
                    folded[line_start:line_end], start - line_start, end - line_start, keyword
                ):
                    found.append((end, -len(keyword), start, number, keyword, bucket))
                    break
                start = find_text(folded, keyword, start + 1)
        found.sort(key=lambda item: (item[0], item[1]))
        for _end, _, start, number, keyword, bucket in found:
            assert folded_lines is not None
            line_start, line_end = folded_lines.span(number)
            done.add(keyword)
            norm_line = folded[line_start:line_end]
            excerpt = _excerpt(
                original_line(number), norm_line, start - line_start, start - line_start + len(keyword)
            )
            lineno = line + number - 1
            hits.extend(KeywordHit(e.tenant_id, e.watch_id, e.keyword, lineno, excerpt) for e in bucket)


def _shifted(original: Callable[[int], str], first: int, number: int) -> str:
    """Line `number` of a block that starts at line `first` of the text."""
    return original(first + number - 1)


def _block_lines(block: str) -> Callable[[int], str]:
    """The n-th line (1-based) of a block, its index built on first use."""
    index: list[LineIndex[str]] = []

    def line(number: int) -> str:
        if not index:
            index.append(LineIndex(block))
        return index[0].line(number)

    return line
