"""The tantivy backend's selector index (core.search.selector_index, core.pair_segments): selectors kept
out of tantivy's term dictionary, found by id; SipHash keys; purge leaves no pair behind."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import tantivy
from hypothesis import given, settings
from hypothesis import strategies as st

from core.pair_segments import PAIR, PairSegments
from core.search import SearchDoc, SearchQuery
from core.search import selector_index as si
from core.search.tantivy_backend import TantivyBackend

KEY = bytes(range(16))


def _doc(i: int, text: str) -> SearchDoc:
    return SearchDoc(
        id=i,
        url=f"https://paste.example/{i}",
        source="pastebin",
        source_kind="paste",
        title=None,
        author=None,
        published=None,
        fetched=datetime(2026, 12, 1, tzinfo=UTC),
        text=text,
    )


def _ids(backend: TantivyBackend, query: str) -> set[int]:
    return {h.id for h in backend.search(SearchQuery(query, limit=50)).hits}


def _pairs(directory: Path) -> np.ndarray:
    segments = sorted(directory.glob("seg-*.pairs"))
    if not segments:
        return np.zeros(0, dtype=PAIR)
    return np.concatenate([np.fromfile(p, dtype=PAIR) for p in segments])


def test_siphash_reference_matches_the_published_vectors() -> None:
    # SipHash-2-4, key 00..0f, message 00..(n-1): vectors 0 and 15 of the reference implementation
    assert si.siphash24(KEY, b"") == 0x726FDB47DD0E0E31
    assert si.siphash24(KEY, bytes(range(15))) == 0xA129CA6149BE45E5
    assert si.siphash24(KEY, bytes(range(8))) == 0x93F5F5799A932462


@pytest.mark.skipif(si._native_siphash is None, reason="the native extension is not built")
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=40) | st.sampled_from(["\ud800", "a\udfffb@acme.com"]), max_size=20),
    st.binary(min_size=16, max_size=16),
)
def test_native_keys_equal_the_python_reference(terms: list[str], key: bytes) -> None:
    # any text, lone surrogates included (hostile input): the same keys, never an exception
    native = si.selector_keys(terms, key).tolist()
    assert native == [si.siphash24(key, t.encode("utf-8", "surrogatepass")) for t in terms]


@pytest.mark.skipif(si._native_siphash is None, reason="the native extension is not built")
def test_native_hash_refuses_bad_input_clearly() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        si.selector_keys(["a"], b"short")
    with pytest.raises(TypeError):
        si._native_siphash(["a", 3], KEY)


def test_new_postings_keep_their_selectors_out_of_tantivy_and_are_found_by_them(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    backend.index(
        [
            _doc(1, "alice@acme.com:hunter2 +86 138 0013 8000"),
            _doc(2, "bob@globex.example 4111 1111 1111 1111"),
            _doc(3, "nothing to see"),
        ]
    )
    assert _ids(backend, "alice@acme.com") == {1}
    assert _ids(backend, "138-0013-8000") == {1}
    assert _ids(backend, "4111111111111111") == {2}
    assert _ids(backend, "acme.com OR globex.example") == {1, 2}
    assert _ids(backend, "alice@acme.com -hunter2") == set()
    # not one term in tantivy's selectors field: that is what made every commit slow
    backend._index.reload()
    searcher = backend._index.searcher()
    legacy = tantivy.Query.term_query(backend.schema, "selectors", "alice@acme.com")
    assert searcher.search(legacy, limit=5).count == 0
    assert {int(p) for p in _pairs(tmp_path / "search" / "selectors")["posting"]} == {1, 2}


def test_an_index_written_before_keeps_finding_its_selectors(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    old = backend._document(_doc(7, "carol@initech.example leaked"))
    old.add_text("selectors", "carol@initech.example")  # as every posting was indexed before
    backend.selectors.discard()  # what _document held for the selector index: this posting predates it
    with backend._writer() as writer:
        writer.add_document(old)
    backend.index([_doc(8, "carol@initech.example again")])
    assert _ids(backend, "carol@initech.example") == {7, 8}


def test_deleting_a_posting_removes_its_pairs_from_the_segments(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    backend.index([_doc(1, "dave@acme.com"), _doc(2, "erin@acme.com")])
    backend.index([_doc(3, "dave@acme.com too")])
    backend.delete([1, 3])
    held = _pairs(tmp_path / "search" / "selectors")
    assert set(held["posting"].tolist()) == {2}
    assert _ids(backend, "dave@acme.com") == set()
    assert _ids(backend, "erin@acme.com") == {2}


def test_segments_without_their_key_are_dropped_not_misread(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    backend.index([_doc(1, "frank@acme.com")])
    (tmp_path / "search" / "selectors" / "key").unlink()
    fresh = TantivyBackend(tmp_path / "search")
    assert _ids(fresh, "frank@acme.com") == set()  # no key: nothing is read (reindex restores it)
    fresh.index([_doc(2, "frank@acme.com again")])
    assert set(_pairs(tmp_path / "search" / "selectors")["posting"].tolist()) == {2}
    assert _ids(fresh, "frank@acme.com") == {2}


def test_a_failed_write_leaves_no_pairs_behind(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    with pytest.raises(RuntimeError), backend._writer() as writer:
        writer.add_document(backend._document(_doc(1, "grace@acme.com")))
        raise RuntimeError("disk gone")
    backend.index([_doc(2, "heidi@acme.com")])
    assert set(_pairs(tmp_path / "search" / "selectors")["posting"].tolist()) == {2}


def test_pair_segments_drop_rewrites_only_the_segments_holding_the_postings(tmp_path: Path) -> None:
    segments = PairSegments(tmp_path / "pairs")
    for posting, keys in ((1, [5, 9]), (2, [5]), (3, [7])):
        segments.add_keys(posting, np.array(keys, dtype="<u8"))
        segments.flush()
    untouched = [p for p in segments.segments() if 3 in np.fromfile(p, dtype=PAIR)["posting"]]
    assert segments.drop([1, 2]) == 3
    assert segments.segments() == untouched
    assert segments.postings_with([5, 9, 7]) == {3}
    assert segments.drop([]) == 0


def test_a_process_holding_the_index_open_follows_a_rebuild_by_another(tmp_path: Path) -> None:
    # the API server keeps its backend while `reindex` in another process starts the index afresh
    server = TantivyBackend(tmp_path / "search")
    server.index([_doc(1, "ivan@acme.com")])
    assert _ids(server, "ivan@acme.com") == {1}
    (tmp_path / "search" / "selectors" / "key").unlink()  # what a fresh index directory amounts to here
    rebuilt = TantivyBackend(tmp_path / "search")
    rebuilt.index([_doc(2, "ivan@acme.com again")])
    assert _ids(server, "ivan@acme.com") == {2}  # read under the new key, not a stale one
    server.index([_doc(3, "ivan@acme.com thrice")])  # written under the new key too
    assert _ids(rebuilt, "ivan@acme.com") == {2, 3}


def test_the_key_and_every_segment_are_on_disk_before_they_take_their_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    synced: set[str] = set()
    named: list[tuple[str, bool]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        named.append((Path(dst).name, os.fspath(src) in synced))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    TantivyBackend(tmp_path / "search").index([_doc(1, "judy@acme.com")])
    mine = [(name, was_synced) for name, was_synced in named if name == "key" or name.startswith("seg-")]
    assert {name for name, _ in mine} >= {"key"} and any(n.startswith("seg-") for n, _ in mine)
    assert all(was_synced for _, was_synced in mine), mine
