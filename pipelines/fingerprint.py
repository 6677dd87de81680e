"""Pipeline stage 2: exact and near-duplicate fingerprints of a posting's text.

Why: a posting already stored must not be stored or alerted again (exact: SHA-256 of the text with
white space folded), and a repost with small edits must join the first leak's alert (near: a 64-bit
SimHash over word shingles, CJK characters counted as words).

The SimHash and the folded text of the exact hash are computed by the native extension
``pipelines.detection._fingerprint`` when it is built (bit-identical; tested against :func:`simhash_py`
and :func:`content_hash_py`, the references kept here and used when the extension is missing or
``LEAKSENTINEL_NATIVE_SCAN=0``).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from types import ModuleType
from typing import Any

from core.posting import PostingDraft
from pipelines.detection.lines import native_switched_on

__all__ = [
    "FingerprintPipeline",
    "content_hash",
    "content_hash_py",
    "hamming",
    "native_available",
    "simhash",
    "simhash_py",
]

_native: ModuleType | None
try:
    _native = importlib.import_module("pipelines.detection._fingerprint")
except ImportError:  # no C compiler at install: the reference below
    _native = None

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)
_MASK64 = (1 << 64) - 1
_SHINGLE = 3
_MAX_TOKENS = 50_000
#: Below this many tokens a SimHash says little; such postings are matched as exact duplicates only.
MIN_TOKENS = 12


def content_hash(text: str) -> str:
    """SHA-256 of the text with white space folded and case-folded (see :func:`content_hash_py`)."""
    if _native is not None and native_available():
        folded: bytes | None = _native.content_fold(text)  # one pass instead of split, join, fold
        if folded is not None:
            return hashlib.sha256(folded).hexdigest()
    return content_hash_py(text)


def content_hash_py(text: str) -> str:
    """The reference: white space runs as one space, ends stripped, case-folded, UTF-8, SHA-256."""
    folded = " ".join(text.split()).casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def native_available() -> bool:
    """True when the SimHash comes from the C extension (built, and not switched off by the same
    ``LEAKSENTINEL_NATIVE_SCAN=0`` that switches off the native scanner)."""
    return _native is not None and native_switched_on()


def simhash(text: str) -> int | None:
    """Charikar's SimHash over 3-token shingles (see :func:`simhash_py`), native when built."""
    if _native is not None and native_available():
        value: int | None = _native.simhash(text)
        return value
    return simhash_py(text)


def simhash_py(text: str) -> int | None:
    """Charikar's SimHash over 3-token shingles, as a signed 64-bit int (fits BIGINT); None for short texts."""
    tokens = [t.casefold() for t in _TOKEN.findall(text[:2_000_000])[:_MAX_TOKENS]]
    if len(tokens) < MIN_TOKENS:
        return None
    weights = [0] * 64
    for i in range(len(tokens) - _SHINGLE + 1):
        shingle = "\x1f".join(tokens[i : i + _SHINGLE]).encode("utf-8")
        h = int.from_bytes(hashlib.blake2b(shingle, digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += 1 if h >> bit & 1 else -1
    value = 0
    for bit in range(64):
        if weights[bit] > 0:
            value |= 1 << bit
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return ((a & _MASK64) ^ (b & _MASK64)).bit_count()


class FingerprintPipeline:
    @classmethod
    def from_crawler(cls, crawler: Any) -> FingerprintPipeline:
        return cls()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, PostingDraft):
            self.apply(item)
        return item

    def apply(self, draft: PostingDraft) -> PostingDraft:
        draft.content_hash = content_hash(draft.text)
        draft.simhash = simhash(draft.text)
        return draft
