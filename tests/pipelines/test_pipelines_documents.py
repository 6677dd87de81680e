"""Document fingerprints: normalisation, winnowing, overlap accuracy, the `hash --document` object."""

from __future__ import annotations

import json
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import BadInput
from pipelines.detection import documents
from pipelines.detection.documents import (
    DocumentMatcher,
    document_fingerprint,
    fingerprints,
    normalize_for_fingerprint,
    overlap,
    read_document_fingerprint,
)


def _vocabulary(seed: int, size: int = 4000) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(size)]


def _words(seed: int, count: int, vocabulary: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(vocabulary) for _ in range(count)]


def _rewrap(words: list[str], seed: int) -> str:
    """Same words, different layout: random line lengths, tabs and double spaces."""
    rng = random.Random(seed)
    return "".join(w + rng.choice([" ", "  ", "\n", "\t", " \n "]) for w in words)


DOC_WORDS = _words(1, 5000, _vocabulary(100))
DOC = " ".join(DOC_WORDS)
DOC_FPS = fingerprints(DOC)
OTHER_VOCAB = _vocabulary(200)


def _posting_with(fraction: float) -> str:
    count = int(len(DOC_WORDS) * fraction)
    start = (len(DOC_WORDS) - count) // 3
    part = _rewrap(DOC_WORDS[start : start + count], 7).upper()
    before = " ".join(_words(2, 800, OTHER_VOCAB))
    after = " ".join(_words(3, 800, OTHER_VOCAB))
    return f"{before}\n\n{part}\n\n{after}"


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8, 1.0])
def test_overlap_estimates_the_fraction_present(fraction: float) -> None:
    measured = overlap(DOC_FPS, fingerprints(_posting_with(fraction)))
    assert abs(measured - fraction) <= 0.1, measured


def test_unrelated_text_has_low_overlap() -> None:
    unrelated = " ".join(_words(9, 6000, OTHER_VOCAB))
    assert overlap(DOC_FPS, fingerprints(unrelated)) < 0.1


def test_matcher_reports_documents_above_threshold_with_line() -> None:
    matcher = DocumentMatcher(
        [(1, 11, "plan", DOC_FPS), (2, 22, "other", fingerprints(" ".join(OTHER_VOCAB)))]
    )
    posting = _posting_with(0.5)
    (hit,) = matcher.find(posting)
    assert (hit.tenant_id, hit.watch_id, hit.name) == (1, 11, "plan")
    assert abs(hit.overlap - 0.5) <= 0.1
    assert hit.line >= 3  # the copied passage starts after the unrelated first line and a blank line
    assert matcher.find(" ".join(_words(9, 3000, _vocabulary(300)))) == []


def test_matcher_reports_line_of_passage() -> None:
    text = "\n".join(["intro line", "", *[" ".join(DOC_WORDS[i : i + 10]) for i in range(0, 1000, 10)]])
    (hit,) = DocumentMatcher([(1, 1, "plan", DOC_FPS)]).find(text)
    assert 3 <= hit.line <= 5


def test_keyed_fingerprints_only_compare_under_the_same_key() -> None:
    key = b"k" * 32
    keyed = fingerprints(DOC, key=key)
    assert keyed != DOC_FPS and keyed == fingerprints(DOC.upper(), key=key)
    matcher = DocumentMatcher([(1, 1, "plan", keyed)])
    assert len(matcher.find(DOC, key=key)) == 1
    assert matcher.find(DOC) == []
    assert matcher.find(DOC, key=b"x" * 32) == []


def test_normalisation_drops_layout_case_and_punctuation() -> None:
    assert normalize_for_fingerprint("Hello,\n  WORLD!\t_x") == "helloworldx"
    assert normalize_for_fingerprint("ＡＢＣ 客户，数据。") == "abc客户数据"


def test_layout_does_not_change_fingerprints() -> None:
    assert fingerprints(DOC) == fingerprints(_rewrap(DOC_WORDS, 3).upper())


def test_cjk_document() -> None:
    rng = random.Random(4)
    doc = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(3000))
    posting = "无关内容" * 50 + "，".join(doc[i : i + 40] for i in range(0, len(doc), 40))
    assert overlap(fingerprints(doc), fingerprints(posting)) > 0.9


def test_document_fingerprint_object_round_trip() -> None:
    obj = document_fingerprint(DOC, name="plan")
    text = json.dumps(obj)
    assert DOC_WORDS[100] not in text.split('"')  # no document text
    assert (obj["kind"], obj["v"], obj["k"], obj["window"], obj["name"]) == ("document", 1, 25, 20, "plan")
    assert obj["n"] == len(obj["fingerprints"]) == len(DOC_FPS)
    assert obj["fingerprints"] == sorted(obj["fingerprints"])
    assert read_document_fingerprint(json.loads(text)) == DOC_FPS


def test_document_too_short_and_bad_objects() -> None:
    with pytest.raises(BadInput):
        document_fingerprint("too short")
    for bad in [{}, {"kind": "document", "v": 1, "k": 5, "window": 20, "fingerprints": ["1"]}]:
        with pytest.raises(BadInput):
            read_document_fingerprint(bad)
    with pytest.raises(BadInput):
        read_document_fingerprint({"kind": "document", "v": 1, "k": 25, "window": 20, "fingerprints": ["zz"]})


def test_overlap_of_empty_document() -> None:
    assert overlap(set(), {1, 2}) == 0.0


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=400), st.integers(1, 30), st.integers(1, 25))
def test_numpy_and_pure_python_agree(text: str, k: int, window: int) -> None:
    """The fast path must give the reference values, or fingerprints stop being comparable."""
    if documents._np is None:
        pytest.skip("numpy not installed")
    norm = normalize_for_fingerprint(text)
    fast = documents._kgram_hashes(norm, k)
    slow = documents._kgram_hashes(norm, k, fast=False)
    assert [int(v) for v in fast] == list(slow)
    assert documents._window_minima(fast, window) == documents._window_minima(slow, window)


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    DocumentMatcher([(1, 1, "plan", DOC_FPS)]).find(text)
    fingerprints(text)


def test_huge_single_line_and_binary_junk() -> None:
    matcher = DocumentMatcher([(1, 1, "plan", DOC_FPS)])
    started = time.monotonic()
    assert matcher.find("ab" * 10_000_000) == []
    matcher.find(random.Random(5).randbytes(5_000_000).decode("latin-1"))
    assert time.monotonic() - started < 60
