"""The candidate index's segments: sorted by (prefix, posting) whatever order postings were added in,
so a lookup (binary search) finds every posting holding a prefix."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import pair_segments
from core.pair_segments import PAIR, sorted_pairs
from core.search.selector_index import SelectorIndex
from pipelines.detection.candidates import CandidateIndex


def _blob(prefixes: list[int]) -> bytes:
    return b"".join(p.to_bytes(8, "big") + bytes(8) for p in prefixes)


def test_a_segment_is_ordered_by_prefix_then_posting_and_every_lookup_finds_its_postings(
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    shared = [rng.getrandbits(64) for _ in range(20)]
    index = CandidateIndex(tmp_path / "candidates")
    holders: dict[int, set[int]] = {}
    posting_ids = list(range(1, 300))
    rng.shuffle(posting_ids)  # added out of order, as concurrent stores can finish
    for posting_id in posting_ids:
        prefixes = [rng.getrandbits(64) for _ in range(rng.randint(0, 30))] + rng.sample(shared, 3)
        for p in prefixes:
            holders.setdefault(p, set()).add(posting_id)
        index.add(posting_id, _blob(prefixes))
    index.flush()
    (segment,) = index.segments()
    pairs = np.fromfile(segment, dtype=[("prefix", "<u8"), ("posting", "<u8")])
    keys = list(zip(pairs["prefix"].tolist(), pairs["posting"].tolist(), strict=True))
    assert keys == sorted(keys)
    for prefix in shared + rng.sample(sorted(holders), 50):
        assert index.postings_with([prefix]) == holders[prefix]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)
        ),
        max_size=300,
    ),
    st.integers(0, 200),
)
@settings(max_examples=200, deadline=None)
def test_the_native_sort_orders_pairs_as_lexsort_does(pairs: list[tuple[int, int]], copies: int) -> None:
    # a value held by many postings makes one long bucket: it must be sorted too (not quadratically)
    pairs = pairs + [(12345, copies - i) for i in range(copies)]
    array = np.array(pairs, dtype=PAIR) if pairs else np.zeros(0, dtype=PAIR)
    expected = sorted_pairs(array).tolist()
    assert pair_segments._native_sort_pairs is not None, "the native extension is not built"
    assert CandidateIndex.sort(array.copy()).tolist() == expected
    # the selector index's segments (selectors and rare tokens) go through the same sort
    assert SelectorIndex(Path("unused")).segments.sort(array.copy()).tolist() == expected


@pytest.mark.skipif(pair_segments._native_sort_pairs is None, reason="the native extension is not built")
def test_the_native_sort_refuses_a_torn_buffer() -> None:
    with pytest.raises(ValueError, match="16-byte pairs"):
        pair_segments._native_sort_pairs(bytearray(17))
    with pytest.raises(BufferError):
        pair_segments._native_sort_pairs(b"x" * 16)  # read-only: it sorts in place
