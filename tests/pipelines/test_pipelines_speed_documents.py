"""The document watches' low-bits filter before the binary search finds exactly the posting
fingerprints that are registered.

Why: `DocumentMatcher._find_native` first drops the posting fingerprints whose low bits no registered
fingerprint has; it must never drop a registered one, and the hits (overlap, line, order) must stay what
the plain binary search over every fingerprint gave.
"""

from __future__ import annotations

import random
from array import array
from typing import Any

import numpy as np
import pytest

from pipelines.detection import documents
from pipelines.detection.documents import DocumentMatcher, fingerprints

KEY = b"k" * 32


def _text(seed: int, words: int) -> str:
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(3000)]
    return " ".join(rng.choice(vocabulary) for _ in range(words))


def _plain_present(matcher: DocumentMatcher, keyed_bytes: bytes) -> list[int]:
    """The indices of registered fingerprints, by a binary search over every one (the former way)."""
    known = np.sort(np.fromiter(matcher._index, dtype=np.uint64, count=len(matcher._index)))
    values = np.frombuffer(keyed_bytes, dtype=np.uint64)
    at = np.minimum(np.searchsorted(known, values), len(known) - 1)
    return np.flatnonzero(known[at] == values).tolist()


@pytest.mark.parametrize("registered", [1, 50, 5_000, 200_000])
def test_the_filter_keeps_every_registered_fingerprint(registered: int) -> None:
    rng = np.random.default_rng(registered)
    known = np.sort(rng.integers(0, 2**64, size=registered, dtype=np.uint64))
    flags = documents._low_bits_filter(known)
    assert flags[(known & np.uint64(len(flags) - 1)).view(np.int64)].all()
    others = rng.integers(0, 2**64, size=100_000, dtype=np.uint64)
    passed = flags[(others & np.uint64(len(flags) - 1)).view(np.int64)].mean()
    assert passed <= 0.08  # about one in 16 at most


@pytest.mark.skipif(not documents.native_available(), reason="the native winnowing is not built")
@pytest.mark.parametrize("seed", range(6))
def test_native_hits_are_those_of_the_plain_search(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [_text(seed * 10 + i, 3000) for i in range(3)]
    matcher = DocumentMatcher(
        [(1 + i % 2, 10 + i, f"doc{i}", fingerprints(doc, key=KEY)) for i, doc in enumerate(docs)]
    )
    rng = random.Random(seed)
    parts = [_text(seed + 100, 4000)]
    for doc in docs[: seed % 4]:
        words = doc.split()
        start = rng.randrange(len(words) // 2)
        parts.append("\n".join(words[start : start + rng.randrange(200, 2000)]))
    parts.append(_text(seed + 200, 1000))
    posting = "\n\n".join(parts)

    seen: dict[str, Any] = {}
    winnow = documents._native.winnow

    def recording(*args: Any) -> Any:
        out = winnow(*args)
        seen["keyed"] = out[0]
        return out

    monkeypatch.setattr(documents._native, "winnow", recording)
    hits = matcher.find(posting, key=KEY)
    keyed = array("Q", seen["keyed"])
    assert len(keyed) > 64  # the numpy path
    plain = [keyed[i] for i in _plain_present(matcher, seen["keyed"])]
    filtered = [fp for fp in keyed if fp in matcher._index]
    assert plain == filtered
    monkeypatch.setattr(documents, "native_available", lambda: False)
    assert len(hits) == seed % 4  # each planted document found
    assert hits == matcher.find(posting, key=KEY)  # the Python reference
