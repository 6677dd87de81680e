"""Hashed candidate scan: the native scanner where it applies, extract.py for every other line.

Why: the matcher needs, per posting, the keyed hash of every candidate and the line it stood on; the
candidates themselves (raw text, for masking) are wanted only for the few lines a registered hash hit.
The C scanner (``_native/scanner.c``) produces exactly extract.py's candidates, hashed, for lines made
of ASCII, CJK ideographs, common CJK punctuation, full-width ASCII forms and the spaces NFKC makes " "
(both read as ASCII, as ``extract.narrow_forms`` does), Latin-1, Latin Extended-A and Cyrillic letters, kana, Hangul
syllables and « » – — ・ ゠ (letters whose NFKC form is themselves and whose case fold is one such letter,
or "ss" for ß; tests/pipelines/test_pipelines_fastscan_scripts.py); it hands every other line back, and
those (and JSON lines, whose values json.loads reads) go through extract.py here. So the result is the same as
hashing ``extract_candidates`` whatever the text, only 30-100x faster on the usual dumps.

Usage::

    scan = HashedScanner(key, regions=("CN",)).scan(text, deadline_s=30)
    scan.digests       # distinct 16-byte keyed hashes (the scheme's truncated HMAC), concatenated
    scan.pairs         # numpy (n, 2) uint32: digest index, 1-based line
    candidates_on_lines(text, {12, 40}, regions)   # extract.py's Candidates for a few lines
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import phonenumbers

from core.canonical import FIELD_TYPES
from core.hashing import keyed_digest
from pipelines.detection import extract as ex
from pipelines.detection import phone_dfa, phone_lengths
from pipelines.detection.lines import LineReader, native_switched_on, utf8_size

try:  # the extension is optional (no C compiler at install time): extract.py alone then
    from pipelines.detection import _scanner
except ImportError:  # pragma: no cover - exercised on machines without the build
    _scanner = None

__all__ = ["HashedScan", "HashedScanner", "candidates_on_lines", "native_available"]

#: Set LEAKSENTINEL_NATIVE_SCAN=0 to use the pure-Python extractor (for comparison and diagnosis).
_ENV = "LEAKSENTINEL_NATIVE_SCAN"
DIGEST_BYTES = 16
_LINE_OF = operator.itemgetter(3)  # the line of a native listing's (type, canonical, raw, line, digest)


def native_available() -> bool:
    return _scanner is not None and native_switched_on()


def sha_implementation() -> str:
    """Which SHA-256 compression the native scanner uses ("sha-ni", "portable"), or "hashlib"."""
    return str(_scanner.use_sha_ni(True)) if native_available() and _scanner is not None else "hashlib"


@dataclass
class HashedScan:
    digests: bytes  # distinct per native call; may repeat across calls (see `unique_sorted`)
    pairs: np.ndarray  # (n, 2) uint32: index into digests, 1-based line number
    partial: bool = False
    line_starts: bytes = b""  # uint32 offset of each line (native scans): lets a listing jump to lines
    #: Lines the native scanner handed back to Python (characters it does not take, JSON lines); every
    #: line of the text when the extension is not used. The native path is 30-100x faster per line.
    deferred_lines: int = 0
    #: Of those, the lines extract.py read in Python (JSON lines whose values the scanner took are not).
    python_lines: int = 0

    def unique_sorted(self) -> bytes:
        """The distinct digests in byte order."""
        if _scanner is not None:
            return bytes(_scanner.sort16(self.digests))
        return b"".join(
            sorted({self.digests[i : i + DIGEST_BYTES] for i in range(0, len(self.digests), DIGEST_BYTES)})
        )

    def prefixes(self) -> np.ndarray:
        """The first 8 bytes of each digest as uint64 (the match index's key)."""
        return np.frombuffer(self.digests, dtype=">u8")[::2].astype("<u8")


@functools.lru_cache(maxsize=1)
def _cn_mobile_table() -> bytes:
    """For each "1abcd" prefix: 1 when every 11-digit number with it is a CN mobile per libphonenumber's
    pattern, 0 when none is, 2 when it depends on later digits (the scanner then asks libphonenumber)."""
    suffixes = ("000000", "999999", "123456", "654321", "505050", "090909", "777777", "314159")
    out = bytearray(10_000)
    for i in range(10_000):
        prefix = f"1{i:04d}"
        results = {ex._CN_MOBILE.fullmatch(prefix + s) is not None for s in suffixes}
        out[i] = 2 if len(results) > 1 else (1 if True in results else 0)
    return bytes(out)


def _automata(region: str) -> tuple[object, ...] | None:
    auto = phone_dfa.region_automata(region)
    if auto is None:
        return None
    npfp, idd, national = auto.national_prefix, auto.idd, auto.national
    return (
        auto.country_code,
        auto.types.table,
        auto.types.accept,
        npfp.table if npfp else None,
        npfp.accept if npfp else None,
        idd.table if idd else None,
        idd.accept if idd else None,
        (auto.types.masks, national.length_masks, national.general_bit, national.type_bits)
        if national
        else None,
    )


@functools.lru_cache(maxsize=1)
def _calling_codes() -> bytes:
    flags = bytearray(1000)
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        if 0 <= code < 1000:
            flags[code] = 1
    return bytes(flags)


def _email_canonical(raw: str) -> str | None:
    return ex._canonical("email", raw)


class HashedScanner:
    """Keyed-hashes a text's candidates; one per worker (holds the native scanner and its buffers)."""

    def __init__(self, key: bytes, regions: Iterable[str] = ()) -> None:
        self.key = key
        self._given_regions = tuple(regions)
        self.regions = ex._phone_regions(self._given_regions)
        self.dob_regions = ex._dob_regions(regions)
        self._native = None
        if native_available():
            assert _scanner is not None
            self._native = _scanner.Scanner(
                key,
                [(r, _length_mask(r)) for r in self.regions],
                [r is not None for r in self.dob_regions],
                _cn_mobile_table(),
                ex._parsed_phone,
                _email_canonical,
            )
            self._native.set_automata(
                [_automata(r) for r in self.regions], _calling_codes(), phone_lengths.min_nsn()
            )

    @property
    def native(self) -> bool:
        return self._native is not None

    def scan(
        self,
        text: str,
        *,
        deadline_s: float = 30.0,
        max_bytes: int = 50_000_000,
        types: Collection[str] | None = None,
    ) -> HashedScan:
        """The keyed hashes of the text's candidates and the lines they stand on.

        ``types``: hash only the candidates of these field types (None: all). The result is then exactly
        the full scan's candidates of those types: a caller that stores no candidate hashes (``scan``
        without ``--store``) need not hash the types no tenant registered."""
        deadline = time.monotonic() + deadline_s
        size = len(text) if text.isascii() else utf8_size(text)  # isascii is a flag: no pass over the text
        if size is None or size > max_bytes:  # too long, or a lone surrogate: _bounded replaces it
            text = ex._bounded(text, max_bytes)
        wanted = None if types is None or set(FIELD_TYPES) <= set(types) else frozenset(types)
        if self._native is None:
            return self._python_scan(text, deadline, wanted)
        mask = type_mask(wanted)
        digests, pairs_raw, deferred, partial, starts = self._native.scan(text, False, deadline, types=mask)
        parts = [digests]
        pairs = [_pairs(pairs_raw, 0, None)]
        offset = len(digests) // DIGEST_BYTES
        if deferred:
            lines = LineReader(text, starts)
            prepared: list[tuple[int, str]] = []
            python: list[tuple[int, str]] = []
            for index in deferred:
                line = lines.line(index + 1).rstrip("\r")
                values = _json_values(line)
                if values is not None:
                    prepared.append((index + 1, "\t".join(values)))
                else:
                    python.append((index + 1, line))
            if prepared:
                numbers = np.array([n for n, _ in prepared], dtype=np.uint32)
                body = "\n".join(t for _, t in prepared)
                d2, p2, deferred2, partial2, _starts = self._native.scan(body, True, deadline, types=mask)
                partial = partial or partial2
                parts.append(d2)
                pairs.append(_pairs(p2, offset, numbers))
                offset += len(d2) // DIGEST_BYTES
                python.extend((prepared[i][0], prepared[i][1]) for i in deferred2)
                json_lines = {prepared[i][0] for i in deferred2}
            else:
                json_lines = set()
            if python:
                table: dict[bytes, int] = {}
                extra: list[bytes] = []
                rows: list[tuple[int, int]] = []
                for number, line in python:
                    if time.monotonic() > deadline:
                        partial = True
                        break
                    for cand in _python_line(line, number, self, deadline, prepared=number in json_lines):
                        if wanted is not None and cand.field_type not in wanted:
                            continue
                        digest = self._hash(cand.field_type, cand.canonical)
                        idx = table.get(digest)
                        if idx is None:
                            idx = table[digest] = offset + len(extra)
                            extra.append(digest)
                        rows.append((idx, number))
                parts.append(b"".join(extra))
                if rows:
                    pairs.append(np.array(rows, dtype=np.uint32))
            python_lines = len(python)
        else:
            python_lines = 0
        all_pairs = pairs[0] if len(pairs) == 1 else np.concatenate(pairs)
        return HashedScan(
            b"".join(parts), all_pairs, bool(partial), bytes(starts), len(deferred), python_lines
        )

    def hashed_candidates(
        self,
        text: str,
        numbers: Iterable[int],
        *,
        deadline_s: float = 30.0,
        line_starts: bytes = b"",
        field_type: str | None = None,
    ) -> list[tuple[ex.Candidate, bytes]]:
        """extract.py's candidates on the given 1-based lines, in its order, each with its digest;
        with `field_type`, only the candidates of that type (the same as filtering the full listing)."""
        wanted = sorted(n for n in numbers if n >= 1)
        if not wanted:
            return []
        deadline = time.monotonic() + deadline_s
        by_line: dict[int, list[tuple[ex.Candidate, bytes]]] = {}
        python = wanted
        if self._native is not None:
            collected, deferred, _partial = self._native.scan(
                text, False, deadline, [n - 1 for n in wanted], line_starts
            )
            if not deferred:
                # every line read natively: the listing is `collected` in line order (a stable sort of
                # a list the scanner produced line by line costs one pass), no Candidate built for a
                # value of another type
                Candidate = ex.Candidate
                if field_type is not None:
                    collected = [t for t in collected if t[0] == field_type]
                collected.sort(key=_LINE_OF)
                return [(Candidate(f, c, r, n), d) for f, c, r, n, d in collected]
            for ftype, canonical, raw, line, digest in collected:
                by_line.setdefault(line, []).append((ex.Candidate(ftype, canonical, raw, line), digest))
            python = [index + 1 for index in deferred]
        if python:
            ctx = ex._Context(regions=self.regions, dob_regions=self.dob_regions, deadline=deadline)
            lines = LineReader(text, line_starts)
            for number in python:
                if number <= lines.count:
                    ctx.start_line(number)
                    line = lines.line(number).rstrip("\r")
                    # a value wrapped onto the next line comes first (extract_candidates' order): the native
                    # scanner listed it already when it read this line, else it is read here
                    wrapped = by_line.get(number, [])
                    if self._native is None and number < lines.count:
                        ex._wrapped(line, lines.line(number + 1).rstrip("\r"), ctx)
                        wrapped = [(c, self._hash(c.field_type, c.canonical)) for c in ctx.take()]
                    for c, _digest in wrapped:
                        ctx.add(c.field_type, c.canonical, c.raw)
                    ctx.take()
                    by_line[number] = wrapped + [
                        (c, self._hash(c.field_type, c.canonical)) for c in ex._scan_line(line, ctx)
                    ]
        return [
            item
            for number in sorted(by_line)
            for item in by_line[number]
            if field_type is None or item[0].field_type == field_type
        ]

    def _hash(self, field_type: str, canonical: str) -> bytes:
        return keyed_digest(self.key, field_type, canonical)

    def _python_scan(self, text: str, deadline: float, wanted: frozenset[str] | None = None) -> HashedScan:
        table: dict[bytes, int] = {}
        rows: list[tuple[int, int]] = []
        remaining = max(0.0, deadline - time.monotonic())
        for cand in ex.extract_candidates(text, self._given_regions, deadline_s=remaining):
            if wanted is not None and cand.field_type not in wanted:
                continue
            digest = self._hash(cand.field_type, cand.canonical)
            idx = table.setdefault(digest, len(table))
            rows.append((idx, cand.line))
        partial = time.monotonic() >= deadline
        digests = b"".join(table)  # dicts keep insertion order: index i is the i-th key
        lines = text.count("\n") + 1 if text else 0
        pairs = np.array(rows, dtype=np.uint32).reshape(-1, 2)
        return HashedScan(digests, pairs, partial, deferred_lines=lines, python_lines=lines)


def type_mask(types: Collection[str] | None) -> int:
    """The native scanner's ``types`` bits for these field types (None: every type)."""
    if types is None:
        return (1 << len(FIELD_TYPES)) - 1
    unknown = set(types) - set(FIELD_TYPES)
    if unknown:
        raise ValueError(f"unknown field types: {', '.join(sorted(unknown))}")
    return sum(1 << FIELD_TYPES.index(t) for t in set(types))


def _length_mask(region: str) -> int:
    mask = 0
    for n in ex._national_lengths(region):
        if 0 <= n < 32:
            mask |= 1 << n
    return mask


def _pairs(raw: bytes, offset: int, numbers: np.ndarray | None) -> np.ndarray:
    """(digest index, 1-based line) rows of a native scan; `numbers` maps a prepared text's lines."""
    pairs = np.frombuffer(raw, dtype=np.uint32).reshape(-1, 2)
    if offset == 0 and numbers is None:
        return pairs  # a read-only view: nothing downstream writes to it
    pairs = pairs.copy()
    pairs[:, 0] += offset
    if numbers is not None:
        pairs[:, 1] = numbers[pairs[:, 1] - 1]
    return pairs


def _empty_pairs() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.uint32)


def _json_values(line: str) -> list[str] | None:
    """extract._scan_line's JSON branch: the values when the line is a structured JSON line, else None."""
    if len(line) <= ex.SEGMENT_CHARS and ex._STRUCTURE.search(line) is None:
        return None
    stripped = line.lstrip()
    if stripped[:1] in ("{", "[") and len(line) <= ex.JSON_MAX_CHARS:
        return ex._json_values(stripped)
    return None


def _python_line(
    line: str, number: int, scanner: HashedScanner, deadline: float, *, prepared: bool
) -> Iterator[ex.Candidate]:
    """extract.py on one line (or, `prepared`, on the tab-joined values of a JSON line)."""
    ctx = ex._Context(regions=scanner.regions, dob_regions=scanner.dob_regions, deadline=deadline)
    ctx.start_line(number)
    if prepared:
        yield from ex._scan_text(line, ctx, sql=False)
    else:
        yield from ex._scan_line(line, ctx)


def candidates_on_lines(
    text: str, numbers: set[int], regions: Iterable[str], *, deadline_s: float = 30.0
) -> list[ex.Candidate]:
    """extract.py's candidates on the given 1-based lines only (the lines a hash hit), in its order."""
    scanner = _lister(tuple(regions))
    return [cand for cand, _digest in scanner.hashed_candidates(text, numbers, deadline_s=deadline_s)]


@functools.lru_cache(maxsize=8)
def _lister(regions: tuple[str, ...]) -> HashedScanner:
    """A scanner used only to list candidates (its all-zero key's hashes are not looked at)."""
    return HashedScanner(b"\x00" * 32, regions)
