"""The document watches' native matching (`winnow_present`) finds exactly the posting fingerprints that
are registered, each once.

Why: `DocumentMatcher._find_native` asks the extension for the registered fingerprints of a posting only:
a low-bits filter drops most, a binary search decides the rest, repeats are dropped before the keyed hash.
It must never drop a registered one nor report one twice, and the hits (overlap, line, order) must stay
what the Python reference gives.
"""

from __future__ import annotations

import random
from array import array

import pytest

from core.canonical import fold
from pipelines.detection import documents
from pipelines.detection.documents import DocumentMatcher, fingerprints

KEY = b"k" * 32
native = pytest.mark.skipif(not documents.native_available(), reason="the native winnowing is not built")


def _text(seed: int, words: int) -> str:
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(3000)]
    return " ".join(rng.choice(vocabulary) for _ in range(words))


@pytest.mark.parametrize("registered", [1, 50, 5_000, 200_000])
def test_the_filter_keeps_every_registered_fingerprint(registered: int) -> None:
    rng = random.Random(registered)
    known = sorted(rng.getrandbits(63) for _ in range(registered))
    flags = documents._low_bits_filter(known)
    assert len(flags) & (len(flags) - 1) == 0
    assert all(flags[fp & (len(flags) - 1)] for fp in known)
    others = [rng.getrandbits(63) for _ in range(100_000)]
    passed = sum(flags[fp & (len(flags) - 1)] for fp in others) / len(others)
    assert passed <= 0.08  # about one in 16 at most


def _matcher(seed: int) -> tuple[DocumentMatcher, list[str]]:
    docs = [_text(seed * 10 + i, 3000) for i in range(3)]
    matcher = DocumentMatcher(
        [(1 + i % 2, 10 + i, f"doc{i}", fingerprints(doc, key=KEY)) for i, doc in enumerate(docs)]
    )
    return matcher, docs


def _present(matcher: DocumentMatcher, folded: str) -> list[tuple[int, int]]:
    """What `_find_native` reads: the extension's registered (fingerprint, raw) pairs of a posting."""
    known = array("Q", sorted(matcher._index))
    return documents._native.winnow_present(
        folded, documents.DEFAULT_K, documents.DEFAULT_WINDOW, KEY, known, documents._low_bits_filter(known)
    )


def _plain_present(matcher: DocumentMatcher, folded: str) -> set[tuple[int, int]]:
    """The same by `winnow` and a dict lookup of every fingerprint (the reference)."""
    keyed, raw = documents._native.winnow(folded, documents.DEFAULT_K, documents.DEFAULT_WINDOW, KEY)
    return {(fp, r) for fp, r in zip(array("Q", keyed), array("Q", raw), strict=True) if fp in matcher._index}


@native
@pytest.mark.parametrize("seed", range(6))
def test_native_hits_are_those_of_the_plain_search(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    matcher, docs = _matcher(seed)
    rng = random.Random(seed)
    parts = [_text(seed + 100, 4000)]
    for doc in docs[: seed % 4]:
        words = doc.split()
        start = rng.randrange(len(words) // 2)
        parts.append("\n".join(words[start : start + rng.randrange(200, 2000)]))
    parts.append(_text(seed + 200, 1000))
    posting = "\n\n".join(parts)

    present = _present(matcher, fold(posting))
    assert len(present) == len(set(present))  # each fingerprint once
    assert set(present) == _plain_present(matcher, fold(posting))
    assert bool(present) == bool(seed % 4)
    hits = matcher.find(posting, key=KEY)
    monkeypatch.setattr(documents, "native_available", lambda: False)
    assert len(hits) == seed % 4  # each planted document found
    assert hits == matcher.find(posting, key=KEY)  # the Python reference


@native
def test_a_repeated_passage_gives_each_fingerprint_once() -> None:
    """A posting that repeats a document's passage many times (a paste reposted in one file) counts each
    of its fingerprints once, so the overlap cannot pass 100% nor a passage count twice."""
    matcher, docs = _matcher(7)
    passage = " ".join(docs[0].split()[:300])
    posting = "\n".join([passage] * 40)
    present = _present(matcher, fold(posting))
    assert present
    assert len(present) == len(set(present))
    assert set(present) == _plain_present(matcher, fold(posting))
    assert set(present) == set(_present(matcher, fold(passage)))


@native
def test_known_values_at_the_edges_of_the_search() -> None:
    """The smallest and the largest registered fingerprint are found, and a fingerprint whose flag is set
    by another one (a low-bits collision) is not reported."""
    text = _text(3, 2000)
    keyed, raw = documents._native.winnow(fold(text), documents.DEFAULT_K, documents.DEFAULT_WINDOW, KEY)
    fps = sorted(array("Q", keyed))
    chosen = [fps[0], fps[len(fps) // 2], fps[-1]]
    known = array("Q", chosen)
    flags = bytearray(1 << 16)
    for fp in fps:  # every posting fingerprint passes the filter: only the search decides
        flags[fp & 0xFFFF] = 1
    found = documents._native.winnow_present(
        fold(text), documents.DEFAULT_K, documents.DEFAULT_WINDOW, KEY, known, flags
    )
    assert sorted(fp for fp, _ in found) == chosen
    raw_of = dict(zip(array("Q", keyed), array("Q", raw), strict=True))
    assert all(raw_of[fp] == r for fp, r in found)
    assert documents._native.winnow_present("", 25, 20, KEY, known, flags) == []


@native
def test_winnow_present_refuses_bad_tables() -> None:
    known = array("Q", [1, 2, 3])
    with pytest.raises(ValueError, match="power of two"):
        documents._native.winnow_present("abc" * 20, 25, 20, KEY, known, bytearray(1000))
    with pytest.raises(ValueError, match="power of two"):
        documents._native.winnow_present("abc" * 20, 25, 20, KEY, b"1234567", bytearray(1024))
    with pytest.raises(ValueError, match="power of two"):
        documents._native.winnow_present("abc" * 20, 25, 20, KEY, known, b"")
    with pytest.raises(TypeError):
        documents._native.winnow_present(b"abc", 25, 20, KEY, known, bytearray(1024))
    with pytest.raises(ValueError):
        documents._native.winnow_present("abc", 25, 20, bytes(65), known, bytearray(1024))
