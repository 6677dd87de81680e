"""Rare tokens (core.search.rare_tokens): long tokens with digits kept out of tantivy's term dictionary as
placeholders, found again through the selector index; phrases holding them checked against the text."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import tantivy
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_search_selector_index import _doc, _ids  # the same postings and searches

from core.search import rare_tokens as rt
from core.search import tantivy_backend as tb
from core.search.cjk import token_string
from core.search.tantivy_backend import TantivyBackend

KEY = bytes(range(16))
native = pytest.mark.skipif(rt._native_split is None, reason="the native extension is not built")


def _same_placeholder(token: str) -> str:
    """Another rare token standing as the same placeholder as `token`."""
    for i in itertools.count():
        other = f"zz{i:06d}"
        if other != token and rt.placeholder(other) == rt.placeholder(token):
            return other
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("token", "rare"),
    [
        ("thomasrodr9266", True),
        ("20240524", True),
        ("4036411359851507", True),
        ("a1b2c3d4", True),
        ("utf8mb4", False),  # seven characters: a common word of SQL dumps stays a term
        ("sha256", False),
        ("abcdefghij", False),  # no digit
        ("北京12345678", False),  # not ASCII
        ("ab_12345678", False),  # token strings hold no "_"; a query token never either
        ("1" * 257, False),
    ],
)
def test_the_rule(token: str, rare: bool) -> None:
    assert rt.is_rare(token) is rare


def test_the_python_split_replaces_rare_tokens_and_keys_each_once() -> None:
    indexed, keys = rt.split_rare_py("user thomasrodr9266 x 20240524 thomasrodr9266  utf8mb4", KEY)
    ph1, ph2 = rt.placeholder("thomasrodr9266"), rt.placeholder("20240524")
    assert indexed == f"user {ph1} x {ph2} {ph1}  utf8mb4"
    assert len(keys) == 2
    assert set(keys.tolist()) == set(
        rt.selector_keys([rt.rare_term("thomasrodr9266"), rt.rare_term("20240524")], KEY).tolist()
    )


_TOKEN = st.one_of(
    st.text("ab9", min_size=1, max_size=12),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20),
    st.text(min_size=1, max_size=10),
    st.sampled_from(["北京", "é12345678", "12345678\u00e9", "1" * 256, "1" * 257, "\ud800" + "1" * 8]),
)


@native
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_TOKEN, st.sampled_from([" ", "  ", "\t", "\n", " \x00"])), max_size=40),
    st.binary(min_size=16, max_size=16),
)
def test_the_native_split_is_the_python_reference(parts: list[tuple[str, str]], key: bytes) -> None:
    tokens = "".join(t + sep for t, sep in parts)
    indexed, keys = rt.split_rare(tokens, key)
    want_indexed, want_keys = rt.split_rare_py(tokens, key)
    assert indexed == want_indexed
    assert sorted(keys.tolist()) == sorted(want_keys.tolist())
    assert len(set(keys.tolist())) == len(keys)  # each rare token once


@native
def test_the_native_split_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        rt._native_split("a", b"short", 8)
    with pytest.raises(ValueError, match="min_chars"):
        rt._native_split("a", KEY, 0)
    with pytest.raises(TypeError):
        rt._native_split(b"bytes", KEY, 8)


def test_rare_tokens_stay_out_of_the_term_dictionary_and_are_found(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    backend.index(
        [
            _doc(1, "user thomasrodr9266 pass hunter2 card 4036411359851507"),
            _doc(2, "login thomasrodr9266 and alpha 4036411359851507 beta"),
            _doc(3, "nothing here but 12345678 and utf8mb4"),
        ]
    )
    index = tantivy.Index.open(str(tmp_path / "search"))
    searcher = index.searcher()
    for token in ("thomasrodr9266", "4036411359851507", "12345678"):
        term = tantivy.Query.term_query(index.schema, "text_tokens", token)
        assert searcher.search(term, limit=5).count == 0, token  # not a term of tantivy's
    assert searcher.search(tantivy.Query.term_query(index.schema, "text_tokens", "utf8mb4"), 5).count == 1
    assert _ids(backend, "thomasrodr9266") == {1, 2}
    assert _ids(backend, "12345678") == {3}
    assert _ids(backend, '"user thomasrodr9266 pass"') == {1}
    assert _ids(backend, '"alpha 4036411359851507 beta"') == {2}
    assert _ids(backend, '"and thomasrodr9266"') == set()
    assert _ids(backend, "thomasrodr9266 -hunter2") == {2}
    assert _ids(backend, "thomasrodr9266 AND alpha") == {2}
    assert _ids(backend, "thomasrodr9265") == set()


def test_a_phrase_whose_placeholders_match_another_token_is_checked_against_the_text(tmp_path: Path) -> None:
    wanted = "acct20240524"
    twin = _same_placeholder(wanted)  # stands as the same placeholder
    backend = TantivyBackend(tmp_path / "search")
    backend.index(
        [
            _doc(1, f"login {wanted} ok"),
            # the placeholders of "login <twin> ok" are those of "login acct20240524 ok", and the posting
            # holds acct20240524 elsewhere: only its text tells it is not the phrase
            _doc(2, f"login {twin} ok\nlater {wanted}"),
        ]
    )
    assert _ids(backend, f'"login {wanted} ok"') == {1}
    assert _ids(backend, f'"login {twin} ok"') == {2}
    assert _ids(backend, wanted) == {1, 2}


def test_past_the_check_limit_the_placeholders_match_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = "acct20240524"
    twin = _same_placeholder(wanted)
    backend = TantivyBackend(tmp_path / "search")
    backend.index([_doc(1, f"login {wanted} ok"), _doc(2, f"login {twin} ok\nlater {wanted}")])
    monkeypatch.setattr(tb, "RARE_PHRASE_CHECKS", 1)
    assert _ids(backend, f'"login {wanted} ok"') == {1, 2}  # documented: unchecked past the limit
    monkeypatch.setattr(tb, "RARE_PHRASE_CHECKS", 2000)
    assert _ids(backend, f'"login {wanted} ok"') == {1}
    # the texts read are bounded too: the first posting's text uses the whole budget here
    monkeypatch.setattr(tb, "RARE_PHRASE_CHECK_CHARS", len(f"login {wanted} ok"))
    assert _ids(backend, f'"login {wanted} ok"') == {1, 2}


def test_postings_indexed_before_rare_tokens_left_the_dictionary_are_still_found(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    backend.index([_doc(1, "new style thomasrodr9266 here")])
    # a posting as the backend wrote it before: its rare tokens as terms of text_tokens
    with backend._writer() as writer:
        old = tantivy.Document()
        old.add_unsigned("id", 2)
        old.add_text("url", "https://paste.example/2")
        old.add_text("source", "pastebin")
        old.add_text("source_kind", "paste")
        text = "old style thomasrodr9266 there"
        old.add_text("text_tokens", token_string(text))
        old.add_bytes("text", text.encode())
        old.add_date("fetched", datetime(2026, 11, 1, tzinfo=UTC))
        old.add_date("seen", datetime(2026, 11, 1, tzinfo=UTC))
        old.add_integer("fetched_us", 0)
        writer.add_document(old)
    assert _ids(backend, "thomasrodr9266") == {1, 2}
    assert _ids(backend, '"old style thomasrodr9266"') == {2}
    assert _ids(backend, '"style thomasrodr9266"') == {1, 2}


def test_a_deleted_posting_leaves_no_pair_of_its_rare_tokens(tmp_path: Path) -> None:
    backend = TantivyBackend(tmp_path / "search")
    backend.index([_doc(1, "keep 4036411359851507"), _doc(2, "purge thomasrodr9266 4036411359851507")])
    term = [rt.rare_term("thomasrodr9266")]
    assert backend.selectors.postings_with(term) == {2}
    backend.delete([2])
    assert backend.selectors.postings_with(term) == set()
    assert backend.selectors.postings_with([rt.rare_term("4036411359851507")]) == {1}
    assert _ids(backend, "thomasrodr9266") == set()


def test_rare_keys_never_meet_a_selectors_key() -> None:
    # a card number is a selector and a rare token: the NUL keeps the two keys apart
    card = "4036411359851507"
    both = rt.selector_keys([card, rt.rare_term(card)], KEY)
    assert both[0] != both[1]
    assert isinstance(both, np.ndarray)
