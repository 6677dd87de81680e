"""The tantivy backend's selector index: which postings hold a selector, kept beside tantivy.

Why not a tantivy field: a posting of a dump holds ~200 selectors (emails, phone numbers, card numbers,
hashes), nearly all seen nowhere else. As tantivy terms each costs a term-dictionary entry and a postings
list at every commit and merge: ~0.4 ms of CPU per 10 KB posting, a sixth of a crawl's pipeline. As
64-bit keys in sorted segment files (core.pair_segments) the same selectors cost a few microseconds, and
a search turns a selector into the ids of the postings holding it, which the tantivy query then matches
by id (deleted postings are gone from tantivy, so a stale pair finds nothing).

Keys: SipHash-2-4 of the normalised selector (core.search.base: ``extract_selectors`` and
``selector_terms`` normalise both sides the same way) under a random 16-byte key made with the index, so
nobody can write a posting whose selectors collide with another value's. Segments without their key
cannot be read and are deleted when a write finds the key missing. ``drop`` (purge) rewrites the
segments holding a posting's pairs, so nothing of what a purged posting held stays here.

Usage (the backend does this under its writer lock)::

    index = SelectorIndex(path / "selectors")
    index.add(posting_id, extract_selectors(text)); index.flush()
    index.postings_with(selector_terms("alice@acme.com"))   # {ids}
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from core.pair_segments import PairSegments

try:  # the native hash (core/search/_native/selectors.c); the Python reference below gives the same keys
    from core.search._selectors import siphash as _native_siphash
except ImportError:  # pragma: no cover - no C compiler at install
    _native_siphash = None

__all__ = ["SelectorIndex", "selector_keys", "siphash24"]

KEY_BYTES = 16
_M64 = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def _sip_rounds(v: list[int], rounds: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(rounds):
        v0 = (v0 + v1) & _M64
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _M64
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _M64
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _M64
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 (the reference the native hash is tested against, and the fallback without it)."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = [0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1, 0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1]
    whole = len(data) - len(data) % 8
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, whole, 8)]
    words.append((len(data) & 0xFF) << 56 | int.from_bytes(data[whole:], "little"))
    for m in words:
        v[3] ^= m
        _sip_rounds(v, 2)
        v[0] ^= m
    v[2] ^= 0xFF
    _sip_rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def selector_keys(terms: Sequence[str], key: bytes) -> np.ndarray:
    """The uint64 key of each term (SipHash-2-4 of its UTF-8 under `key`; a lone surrogate, which only
    hostile text holds, as "surrogatepass" writes it), in order."""
    if _native_siphash is not None:
        return np.frombuffer(_native_siphash(terms, key), dtype="<u8")
    return np.fromiter(
        (siphash24(key, t.encode("utf-8", "surrogatepass")) for t in terms), dtype="<u8", count=len(terms)
    )


class SelectorIndex:
    """(selector key, posting id) segments in one directory, with the key file `key`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.segments = PairSegments(self.directory)
        self._key: bytes | None = None

    def _read_key(self) -> bytes | None:
        try:
            raw = (self.directory / "key").read_bytes()
        except FileNotFoundError:
            return None
        return raw if len(raw) == KEY_BYTES else None

    def begin(self) -> None:
        """A write starts (under the owner's write lock): the key is read again, once for the write, so a
        process never adds pairs under a key another process has replaced since (a rebuilt index)."""
        self._key = None

    def _write_key(self) -> bytes:
        """The key, made (and any segment it did not write deleted) when there is none."""
        if self._key is not None:
            return self._key
        key = self._read_key()
        if key is not None:
            self._key = key
            return key
        self.segments.clear()
        self.directory.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        tmp = self.directory / f".key.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "wb") as handle:  # on disk before any segment written under it
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "key")
        self._key = key
        return key

    def add(self, posting_id: int, selectors: Iterable[str]) -> None:
        """Hold the posting's selectors until `flush` (callers hold the index's write lock)."""
        terms = selectors if isinstance(selectors, list) else list(selectors)
        if terms:
            self.segments.add_keys(posting_id, selector_keys(terms, self._write_key()))

    def add_keys(self, posting_id: int, keys: np.ndarray) -> None:
        """Hold pairs of keys made already under `write_key` (core.search.rare_tokens) until `flush`."""
        self.segments.add_keys(posting_id, keys)

    def write_key(self) -> bytes:
        """The key the pairs of this write are made under (made when there is none)."""
        return self._write_key()

    def flush(self) -> None:
        self.segments.flush()

    def discard(self) -> None:
        self.segments.discard()

    def postings_with(self, terms: Sequence[str]) -> set[int]:
        """Ids of the postings holding any of these normalised selectors (deleted ones included: the
        caller's index has dropped them)."""
        key = self._read_key()
        if key is None or not terms:
            return set()
        return self.segments.postings_with(selector_keys(list(terms), key))

    def drop(self, postings: Iterable[int]) -> int:
        """Every pair of these postings deleted; returns how many."""
        return self.segments.drop(postings)
