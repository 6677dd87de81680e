"""Confidential-document watches: winnowing fingerprints (Schleimer, Wilkerson, Aiken 2003).

Why winnowing: a company registers a document without handing over its text; what it registers is a
sample of hashes of its 25-character pieces (k-grams), chosen so that any passage of at least
``k + window - 1`` = 44 characters shared with a posting shares at least one fingerprint, whatever
surrounds it. The overlap |doc ∩ posting| / |doc| then estimates the fraction of the document present.
Text is normalised first (NFKC, case-fold, whitespace and punctuation dropped) so re-wrapping and
case changes do not matter; CJK characters are kept.

Hashing: k-grams get a 64-bit polynomial hash (mixed by the splitmix64 finaliser); the window minimum
(the set of minima does not depend on how ties are broken) is then, when a deployment key is given,
replaced by its keyed BLAKE2b, so fingerprints are only comparable within one deployment. Fingerprints
are 63-bit so they fit a signed 64-bit database column. The whole chain (letters, k-gram hashes, window
minima, keyed BLAKE2b, first positions and lines) runs in the C extension ``_fingerprint`` when it is
built; the Python functions below (numpy-vectorised when numpy is installed, pure Python otherwise) are
the reference it is tested against and the fallback, with the same values.

Usage::

    obj = document_fingerprint(text, name="q3-plan", key=deployment_key)   # what `hash --document` prints
    fps = read_document_fingerprint(obj)                                   # back to set[int]
    DocumentMatcher([(tenant_id, watch_id, "q3-plan", fps)]).find(posting, key=deployment_key)
"""

from __future__ import annotations

import hashlib
import importlib
import re
from array import array
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.canonical import fold
from core.errors import BadInput
from pipelines.detection.lines import native_switched_on

_np: Any
try:  # numpy makes fingerprinting much faster; the pure-Python path gives the same values
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is present wherever the tests run
    _np = None

_native: Any
try:  # the C extension: the same fingerprints, one pass over the text
    _native = importlib.import_module("pipelines.detection._fingerprint")
except ImportError:  # no C compiler at install
    _native = None


def native_available() -> bool:
    """True when fingerprints come from the C extension (not switched off by ``LEAKSENTINEL_NATIVE_SCAN=0``)."""
    return _native is not None and native_switched_on()


__all__ = [
    "DEFAULT_K",
    "DEFAULT_WINDOW",
    "FINGERPRINT_VERSION",
    "MAX_TEXT_CHARS",
    "DocumentHit",
    "DocumentMatcher",
    "document_fingerprint",
    "fingerprints",
    "normalize_for_fingerprint",
    "overlap",
    "read_document_fingerprint",
]

FINGERPRINT_VERSION = 1
DEFAULT_K = 25
DEFAULT_WINDOW = 20
MAX_TEXT_CHARS = 50_000_000

_MASK64 = (1 << 64) - 1
_MASK63 = (1 << 63) - 1
_BASE = 0x100000001B3  # FNV-1 64-bit prime: odd, so the polynomial mixes every position
_DROP = re.compile(r"[\W_]+")  # whitespace, punctuation, symbols (Unicode-aware: CJK is \w)
_DROP_KEEP_NL = re.compile(r"[^\w\n]+|_+")


def normalize_for_fingerprint(text: str) -> str:
    """NFKC + case-fold, then only letters and digits: layout and case no longer matter."""
    return _DROP.sub("", fold(text[:MAX_TEXT_CHARS]))


def _normalized_lines(text: str) -> tuple[str, _LetterLines]:
    """The normalised text and a map from its positions to original line numbers."""
    with_lines = _DROP_KEEP_NL.sub("", fold(text[:MAX_TEXT_CHARS]))
    return with_lines.replace("\n", ""), _LetterLines(with_lines)


class _LetterLines:
    """Line numbers of positions in the normalised text, from the same text with its line ends kept.

    Why not a list of line starts: a posting of 20 MB of empty lines would need 20 million of them;
    a count of letters and line ends per 4096 characters, bisected, is as exact and a few kB."""

    STEP = 4096

    def __init__(self, with_lines: str) -> None:
        self.text = with_lines
        letters, newlines = [0], [0]
        for start in range(0, len(with_lines), self.STEP):
            piece_nl = with_lines.count("\n", start, start + self.STEP)
            newlines.append(newlines[-1] + piece_nl)
            letters.append(letters[-1] + min(self.STEP, len(with_lines) - start) - piece_nl)
        self._letters, self._newlines = letters, newlines

    def line(self, position: int) -> int:
        """1-based line of the `position`-th (0-based) letter; the last line past the end."""
        block = bisect_right(self._letters, position) - 1
        if block >= len(self._letters) - 1:
            return self._newlines[-1] + 1
        start = block * self.STEP
        # smallest q with letters(text[:q]) > position: the letter is text[q - 1]
        lo, hi = start, min(len(self.text), start + self.STEP)
        base = self._letters[block]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if base + (mid - start) - self.text.count("\n", start, mid) > position:
                hi = mid
            else:
                lo = mid
        return self._newlines[block] + self.text.count("\n", start, hi - 1) + 1


# --------------------------------------------------------------------------- k-gram hashes


def _mix_py(h: int) -> int:
    """splitmix64 finaliser: spreads the polynomial hash so window minima are unbiased."""
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
    return h ^ (h >> 31)


def _kgram_hashes_py(norm: str, k: int) -> Sequence[int]:
    """Hash of every k-gram, by a rolling polynomial hash mod 2**64 (reference implementation)."""
    codes = [ord(ch) for ch in norm]
    out = array("Q")
    if len(codes) < k:
        return out
    top = pow(_BASE, k - 1, 1 << 64)
    h = 0
    for code in codes[:k]:
        h = (h * _BASE + code) & _MASK64
    out.append(_mix_py(h))
    for i in range(k, len(codes)):
        h = ((h - codes[i - k] * top) * _BASE + codes[i]) & _MASK64
        out.append(_mix_py(h))
    return out


def _kgram_hashes_np(norm: str, k: int) -> Any:
    """The same hashes as `_kgram_hashes_py`, vectorised: k multiply-adds over the code-point array."""
    assert _np is not None
    codes = _np.frombuffer(norm.encode("utf-32-le", "surrogatepass"), dtype=_np.uint32).astype(_np.uint64)
    m = len(codes) - k + 1
    if m <= 0:
        return _np.zeros(0, dtype=_np.uint64)
    h = _np.zeros(m, dtype=_np.uint64)
    base = _np.uint64(_BASE)
    for j in range(k):
        h *= base
        h += codes[j : j + m]
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        h ^= h >> _np.uint64(shift)
        h *= _np.uint64(mult)
    h ^= h >> _np.uint64(31)
    return h


def _window_minima_py(hashes: Sequence[int], window: int) -> set[int]:
    """The minimum of each run of `window` consecutive hashes (monotonic deque, linear time)."""
    if len(hashes) <= window:
        return {min(hashes)} if len(hashes) else set()
    minima: set[int] = set()
    queue: deque[int] = deque()  # indices whose hashes increase from left to right
    for i, h in enumerate(hashes):
        while queue and hashes[queue[-1]] >= h:  # >=: the rightmost of equal minima survives
            queue.pop()
        queue.append(i)
        if queue[0] <= i - window:
            queue.popleft()
        if i >= window - 1:
            minima.add(hashes[queue[0]])
    return minima


def _window_minima_np(hashes: Any, window: int) -> set[int]:
    """Window minima by doubling: min over 2**j, then two overlapping spans cover the window."""
    assert _np is not None
    if len(hashes) <= window:
        return {int(hashes.min())} if len(hashes) else set()
    span, mins = 1, hashes
    while span * 2 <= window:
        mins = _np.minimum(mins[:-span], mins[span:])
        span *= 2
    if span < window:
        shift = window - span
        mins = _np.minimum(mins[:-shift], mins[shift:])
    changes = _np.concatenate(([True], mins[1:] != mins[:-1]))  # runs of one minimum: keep one of each
    return {int(v) for v in _np.unique(mins[changes])}


def _kgram_hashes(norm: str, k: int, *, fast: bool = True) -> Any:
    return _kgram_hashes_np(norm, k) if fast and _np is not None else _kgram_hashes_py(norm, k)


def _window_minima(hashes: Any, window: int) -> set[int]:
    if _np is not None and isinstance(hashes, _np.ndarray):
        return _window_minima_np(hashes, window)
    return _window_minima_py(hashes, window)


def _keyed(raw: int, key: bytes | None) -> int:
    """The stored fingerprint of a selected hash: keyed BLAKE2b of it when a key is given."""
    if key is None:
        return raw & _MASK63
    digest = hashlib.blake2b(raw.to_bytes(8, "big"), digest_size=8, key=key).digest()
    return int.from_bytes(digest, "big") & _MASK63


def _check_params(k: int, window: int) -> None:
    if k < 1 or window < 1:
        raise BadInput("fingerprint k and window must be positive")


def fingerprints(
    text: str, k: int = DEFAULT_K, window: int = DEFAULT_WINDOW, *, key: bytes | None = None
) -> set[int]:
    """The winnowed fingerprints of `text` (empty when its normalised form is shorter than k)."""
    _check_params(k, window)
    if native_available():
        keyed, _ = _native.winnow(fold(text[:MAX_TEXT_CHARS]), k, window, key)
        return set(array("Q", keyed))
    raw = _window_minima(_kgram_hashes(normalize_for_fingerprint(text), k), window)
    return {_keyed(h, key) for h in raw}


def document_fingerprint(text: str, name: str | None = None, *, key: bytes | None = None) -> dict[str, Any]:
    """The JSON object `hash --document` prints: fingerprints as 16-hex-digit strings, no document text."""
    fps = fingerprints(text, key=key)
    if not fps:
        raise BadInput(f"document too short to fingerprint (needs {DEFAULT_K} letters or digits)")
    obj: dict[str, Any] = {
        "kind": "document",
        "v": FINGERPRINT_VERSION,
        "k": DEFAULT_K,
        "window": DEFAULT_WINDOW,
    }
    if name is not None:
        obj["name"] = name
    obj["keyed"] = key is not None
    obj["fingerprints"] = [f"{fp:016x}" for fp in sorted(fps)]
    obj["n"] = len(fps)
    return obj


def read_document_fingerprint(obj: Mapping[str, Any]) -> set[int]:
    """Fingerprints back from a `document_fingerprint` object; BadInput if it is not one this version reads."""
    if obj.get("kind") != "document" or obj.get("v") != FINGERPRINT_VERSION:
        raise BadInput(f"not a version {FINGERPRINT_VERSION} document fingerprint (from `hash --document`)")
    if obj.get("k") != DEFAULT_K or obj.get("window") != DEFAULT_WINDOW:
        raise BadInput(f"document fingerprint must use k={DEFAULT_K}, window={DEFAULT_WINDOW}")
    values = obj.get("fingerprints")
    if not isinstance(values, list) or not values:
        raise BadInput("document fingerprint has no fingerprints")
    try:
        fps = {int(v, 16) if isinstance(v, str) else int(v) for v in values}
    except (TypeError, ValueError):
        raise BadInput("document fingerprint holds a value that is not a hex string") from None
    if any(fp < 0 or fp > _MASK63 for fp in fps):
        raise BadInput("document fingerprint value out of range")
    return fps


def overlap(doc_fps: set[int], posting_fps: set[int]) -> float:
    """Fraction of the document's fingerprints found in the posting (0.0 for an empty document)."""
    return len(doc_fps & posting_fps) / len(doc_fps) if doc_fps else 0.0


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class DocumentHit:
    """A registered document found in a posting: the fraction present and an approximate first line."""

    tenant_id: int
    watch_id: int
    name: str
    overlap: float
    line: int


@dataclass(frozen=True)
class _Doc:
    tenant_id: int
    watch_id: int
    name: str
    size: int


def _first_positions(hashes: Any, wanted: set[int]) -> dict[int, int]:
    """Index of the first k-gram whose raw hash is in `wanted`."""
    if _np is not None and isinstance(hashes, _np.ndarray):
        targets = _np.fromiter(wanted, dtype=_np.uint64, count=len(wanted))
        idx = _np.nonzero(_np.isin(hashes, targets))[0]
        values, first = _np.unique(hashes[idx], return_index=True)
        return {int(v): int(idx[f]) for v, f in zip(values, first, strict=True)}
    found: dict[int, int] = {}
    for i, h in enumerate(hashes):
        if h in wanted and h not in found:
            found[h] = i
    return found


def _low_bits_filter(known: Sequence[int]) -> bytearray:
    """Flags indexed by a fingerprint's low bits, set for those of `known`: a power of two of flags, about
    16 per known fingerprint (2^16 to 2^24), so a fingerprint not known passes rarely."""
    size = 1 << 16
    while size < 16 * len(known) and size < 1 << 24:
        size <<= 1
    flags = bytearray(size)
    for fp in known:
        flags[fp & (size - 1)] = 1
    return flags


class DocumentMatcher:
    """Registered documents behind an inverted index fingerprint → documents, so a scan costs one
    lookup per posting fingerprint whatever the number of documents."""

    def __init__(self, items: Iterable[tuple[int, int, str, set[int]]]) -> None:
        self._docs: list[_Doc] = []
        self._index: dict[int, list[int]] = {}
        self._known: array[int] | None = None  # the fingerprints of `_index`, sorted, built on first use
        self._filter = bytearray()  # flags by the low bits of a fingerprint: may be in `_known`
        for tenant_id, watch_id, name, fps in items:
            if not fps:
                continue
            doc_id = len(self._docs)
            self._docs.append(_Doc(tenant_id, watch_id, name, len(fps)))
            for fp in fps:
                self._index.setdefault(fp, []).append(doc_id)

    def __len__(self) -> int:
        return len(self._docs)

    def find(
        self,
        text: str,
        *,
        key: bytes | None = None,
        min_overlap: float = 0.1,
        folded: str | None = None,
    ) -> list[DocumentHit]:
        """Documents of which at least `min_overlap` of the fingerprints are in the posting.

        ``folded``: ``fold(text[:MAX_TEXT_CHARS])`` when the caller has it already (the keyword watches
        read the same folded text)."""
        if not self._docs or not text:
            return []
        if native_available():
            return self._find_native(text, key, min_overlap, folded)
        norm, letter_lines = _normalized_lines(text)
        hashes = _kgram_hashes(norm, DEFAULT_K)
        keyed = {_keyed(h, key): h for h in _window_minima(hashes, DEFAULT_WINDOW)}
        counts: Counter[int] = Counter()
        raws_of: dict[int, set[int]] = {}
        for fp, raw in keyed.items():
            for doc_id in self._index.get(fp, ()):
                counts[doc_id] += 1
                raws_of.setdefault(doc_id, set()).add(raw)
        found = [
            (doc_id, min(1.0, n / self._docs[doc_id].size))
            for doc_id, n in counts.items()
            if n / self._docs[doc_id].size >= min_overlap
        ]
        if not found:
            return []
        first = _first_positions(hashes, set().union(*(raws_of[d] for d, _ in found)))
        hits = []
        for doc_id, share in found:
            doc = self._docs[doc_id]
            position = min(first.get(raw, 0) for raw in raws_of[doc_id])
            line = letter_lines.line(position)
            hits.append(DocumentHit(doc.tenant_id, doc.watch_id, doc.name, share, line))
        return sorted(hits, key=lambda h: (h.tenant_id, -h.overlap, h.watch_id))

    def _find_native(
        self, text: str, key: bytes | None, min_overlap: float, folded: str | None = None
    ) -> list[DocumentHit]:
        """`find` through the C extension: one pass for the fingerprints, a second only when a document
        is present (for its first line); the same hits as the Python path."""
        if folded is None:
            folded = fold(text[:MAX_TEXT_CHARS])
        if self._known is None:  # sorted, for the extension's binary search
            self._known = array("Q", sorted(self._index))
            self._filter = _low_bits_filter(self._known)
        present = _native.winnow_present(folded, DEFAULT_K, DEFAULT_WINDOW, key, self._known, self._filter)
        counts: Counter[int] = Counter()
        raws_of: dict[int, set[int]] = {}
        for fp, raw in present:
            for doc_id in self._index[fp]:
                counts[doc_id] += 1
                raws_of.setdefault(doc_id, set()).add(raw)
        found = [
            (doc_id, min(1.0, n / self._docs[doc_id].size))
            for doc_id, n in counts.items()
            if n / self._docs[doc_id].size >= min_overlap
        ]
        if not found:
            return []
        wanted = sorted(set().union(*(raws_of[d] for d, _ in found)))
        first: dict[int, tuple[int, int]] = _native.first_lines(folded, DEFAULT_K, wanted)
        hits = []
        for doc_id, share in found:
            doc = self._docs[doc_id]
            _, line = min(first.get(raw, (0, 1)) for raw in raws_of[doc_id])
            hits.append(DocumentHit(doc.tenant_id, doc.watch_id, doc.name, share, line))
        return sorted(hits, key=lambda h: (h.tenant_id, -h.overlap, h.watch_id))
