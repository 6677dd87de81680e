"""The embedded search backend: a tantivy index in ``$LEAKSENTINEL_HOME/search``.

Why tantivy: a Lucene-class inverted index as a wheel, so the laptop setup needs no server. Text is
pre-tokenised in Python (`core.search.cjk`: words + CJK bigrams) into a whitespace-tokenised field with
positions, so the same analysis serves Chinese, English and mixed text, and a phrase of bigrams finds
``客户数据`` exactly. Selectors extracted at index time go to the selector index beside it
(core.search.selector_index, ``selectors/``), which turns a selector query into the ids of the postings
holding it; indexes written before it keep theirs in the exact-term field ``selectors``, which a query
still reads.

Concurrency: tantivy allows one writer per index; crawl jobs are separate processes, so every write
takes an ``fcntl`` lock on ``writer.lock`` (waiting for the other process), opens the writer, commits and
releases it. Searches reload the reader first, so a commit is visible to the next search.

Writers: a crawl writes small batches (pipelines.search_index), each with one indexing thread and a
small heap: each thread writes its own segment per commit, so more threads only mean more segments to
merge (and a memory arena each) for a few hundred postings. A rebuild (`reindex`, any iterable that is
not a small list) gets the large heap and tantivy's threads.

Ranking and paging: score, then fetched (newest first) inside groups of equal scores of up to
`TIE_SORT_MAX` postings (a larger tie group, e.g. a pure ``-term`` query, stays in index order).
The cursor is an offset, so pages are stable while the index does not change. Facets (by source, by
day) use tantivy's aggregations and count *all* matching postings.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tantivy

from core.errors import BadInput, OperationalError
from core.search.base import (
    And,
    CharLeaf,
    Node,
    Not,
    Or,
    SearchDoc,
    SearchHit,
    SearchPage,
    SearchQuery,
    SelectorLeaf,
    TokensLeaf,
    decode_cursor,
    encode_cursor,
    extract_selectors,
    make_snippet,
    parse_query,
    snippet_regex,
    to_utc,
)
from core.search.cjk import token_string
from core.search.rare_tokens import is_rare, placeholder, rare_term, split_rare
from core.search.selector_index import SelectorIndex

__all__ = ["MAX_INDEXED_CHARS", "MAX_LIMIT", "MAX_STORED_CHARS", "TIE_SORT_MAX", "TantivyBackend"]

#: Text beyond this is neither tokenised nor scanned for selectors (postings may be 50 MB).
MAX_INDEXED_CHARS = 10_000_000
#: The stored copy used for snippets is cut here.
MAX_STORED_CHARS = 1_000_000
MAX_LIMIT = 1000
TIE_SORT_MAX = 1000
#: Writer heap of bulk writes (reindex), split between tantivy's indexing threads.
WRITER_HEAP_BYTES = 128_000_000
#: A batch of at most `SMALL_BATCH` postings (a crawl's) is written by one thread with this heap; tantivy
#: needs at least 15 MB per thread, and a batch that outgrows the heap just writes one more segment. A
#: crawl's batch holds up to 1,000 postings (pipelines.search_index): 600 postings of 10 KB outgrew 32 MB
#: (two segments per commit, so tantivy's merge of eight segments came twice as often); the arena grows as
#: it is used, so the larger limit costs no memory to a small batch (same peak RSS measured).
SMALL_WRITER_HEAP_BYTES = 64_000_000
SMALL_BATCH = 2000
#: A phrase holding a rare token is checked against the stored text of at most this many postings that its
#: placeholders match (core.search.rare_tokens); past it, the placeholders' match stands unchecked.
RARE_PHRASE_CHECKS = 2000
#: ... and of at most this many characters of their stored texts in all (tokenising them costs ~5 ns a
#: character: a phrase check stays under ~0.2 s); the postings past it keep the placeholders' match.
RARE_PHRASE_CHECK_CHARS = 40_000_000
TITLE_BOOST = 2.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    sb.add_text_field("url", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("source", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("source_kind", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("title", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("author", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("title_tokens", tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("text_tokens", tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("selectors", tokenizer_name="raw", index_option="freq")  # read, no longer written
    sb.add_bytes_field("text", stored=True)
    sb.add_date_field("published", stored=True, indexed=True, fast=True)
    sb.add_date_field("fetched", stored=True, indexed=True, fast=True)
    sb.add_date_field("seen", indexed=True, fast=True)
    sb.add_integer_field("fetched_us", fast=True)
    return sb.build()


def _micros(value: datetime) -> int:
    delta = to_utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class TantivyBackend:
    """`SearchBackend` over a tantivy index directory (created on first use)."""

    def __init__(self, path: Path, heap_bytes: int = WRITER_HEAP_BYTES) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.heap_bytes = heap_bytes
        self.schema = build_schema()
        self._thread_lock = threading.Lock()
        self._lock_path = self.path / "writer.lock"
        self.selectors = SelectorIndex(self.path / "selectors")
        with self._writer_lock():  # two processes must not create the index at once
            try:
                self._index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
            except ValueError as exc:
                raise OperationalError(
                    f"search index {self.path} cannot be opened ({exc}); delete the directory and reindex"
                ) from None

    # ------------------------------------------------------------------ writing

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """One writer per process (thread lock) and per index across processes (fcntl lock)."""
        with self._thread_lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @contextmanager
    def _writer(self, small: bool = False) -> Iterator[Any]:
        with self._writer_lock():
            self.selectors.begin()
            if small:
                writer = self._index.writer(min(self.heap_bytes, SMALL_WRITER_HEAP_BYTES), 1)
            else:
                writer = self._index.writer(self.heap_bytes)
            try:
                yield writer
                self.selectors.flush()  # before the commit: a pair without its document finds nothing
                writer.commit()
            except BaseException:
                self.selectors.discard()
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # releases tantivy's own lock for the next process

    def _document(self, d: SearchDoc) -> tantivy.Document:
        doc = tantivy.Document()
        doc.add_unsigned("id", d.id)
        doc.add_text("url", d.url[:2048])
        doc.add_text("source", d.source)
        doc.add_text("source_kind", d.source_kind)
        text = d.text[:MAX_INDEXED_CHARS]
        if d.title:
            doc.add_text("title", d.title[:512])
            doc.add_text("title_tokens", token_string(d.title[:512]))
        if d.author:
            doc.add_text("author", d.author[:256])
        # rare tokens (long ones with digits) stand as placeholders; the selector index holds them
        indexed, rare_keys = split_rare(token_string(text), self.selectors.write_key())
        doc.add_text("text_tokens", indexed)
        self.selectors.add_keys(d.id, rare_keys)
        self.selectors.add(d.id, extract_selectors(f"{d.title or ''}\n{text}"))
        doc.add_bytes("text", d.text[:MAX_STORED_CHARS].encode("utf-8", "replace"))
        if d.published is not None:
            doc.add_date("published", to_utc(d.published))
        doc.add_date("fetched", to_utc(d.fetched))
        doc.add_date("seen", d.seen)
        doc.add_integer("fetched_us", _micros(d.fetched))
        return doc

    def index(self, docs: Iterable[SearchDoc], batch: int = 10_000) -> int:
        """Add or replace (by id) the postings; visible to searches once this returns."""
        count = 0
        small = isinstance(docs, list | tuple) and len(docs) <= SMALL_BATCH
        with self._writer(small) as writer:
            pending: list[SearchDoc] = []
            for d in docs:
                pending.append(d)
                if len(pending) >= batch:
                    count += self._add(writer, pending)
                    pending = []
            count += self._add(writer, pending)
        # no reader reload here: every read reloads first (a crawl, which only writes, would reopen every
        # segment's reader after each batch for nothing)
        return count

    def _add(self, writer: Any, docs: list[SearchDoc]) -> int:
        if not docs:
            return 0
        # Replace semantics: a delete applies to documents added before it, so delete first.
        writer.delete_documents_by_query(
            tantivy.Query.term_set_query(self.schema, "id", [d.id for d in docs])
        )
        for d in docs:
            writer.add_document(self._document(d))
        self.selectors.flush()  # one segment per batch: a rebuild does not hold every posting's pairs
        return len(docs)

    def delete(self, ids: Iterable[int]) -> int:
        wanted = [int(i) for i in ids]
        if not wanted:
            return 0
        with self._writer(small=len(wanted) <= SMALL_BATCH) as writer:
            writer.delete_documents_by_query(tantivy.Query.term_set_query(self.schema, "id", wanted))
            self.selectors.drop(wanted)
        return len(wanted)

    def count(self) -> int:
        self._index.reload()
        return int(self._index.searcher().num_docs)

    def close(self) -> None:
        """Nothing held between calls: writers are released after every write."""

    # ------------------------------------------------------------------ querying

    def _leaf_query(self, leaf: Node) -> tantivy.Query:
        s = self.schema
        Q = tantivy.Query
        if isinstance(leaf, SelectorLeaf):
            clauses = [(tantivy.Occur.Should, Q.term_query(s, "selectors", t)) for t in leaf.terms]
            ids = self.selectors.postings_with(leaf.terms)
            if ids:
                clauses.append(
                    (tantivy.Occur.Should, Q.const_score_query(Q.term_set_query(s, "id", sorted(ids)), 1.0))
                )
            return Q.boolean_query(clauses)
        if isinstance(leaf, CharLeaf):
            pattern = f"{leaf.char}.?|.{leaf.char}"
            return Q.boolean_query(
                [
                    (tantivy.Occur.Should, Q.regex_query(s, "text_tokens", pattern)),
                    (tantivy.Occur.Should, Q.regex_query(s, "title_tokens", pattern)),
                ]
            )
        if isinstance(leaf, TokensLeaf):
            if len(leaf.tokens) == 1:
                text_q = Q.term_query(s, "text_tokens", leaf.tokens[0])
                title_q = Q.term_query(s, "title_tokens", leaf.tokens[0])
            else:
                text_q = Q.phrase_query(s, "text_tokens", list(leaf.tokens))
                title_q = Q.phrase_query(s, "title_tokens", list(leaf.tokens))
            if any(is_rare(t) for t in leaf.tokens):
                # postings indexed since rare tokens left the term dictionary (core.search.rare_tokens);
                # the query above still finds those indexed before
                found = self._rare_query(leaf.tokens)
                if found is not None:
                    text_q = Q.boolean_query([(tantivy.Occur.Should, text_q), (tantivy.Occur.Should, found)])
            return Q.boolean_query(
                [(tantivy.Occur.Should, text_q), (tantivy.Occur.Should, Q.boost_query(title_q, TITLE_BOOST))]
            )
        raise TypeError(f"not a leaf: {leaf!r}")

    def _rare_query(self, tokens: tuple[str, ...]) -> tantivy.Query | None:
        """The postings whose text holds `tokens` (one token, or a phrase) where their rare tokens are
        indexed as placeholders (core.search.rare_tokens); None when there is none.

        A phrase is matched with the placeholders among the postings holding every rare token of it, and
        each posting so found is checked against its stored text (a placeholder stands for 1 in 256 of the
        rare tokens), up to `RARE_PHRASE_CHECKS` of them and `RARE_PHRASE_CHECK_CHARS` of their texts;
        past that, the placeholders' match stands."""
        s, Q = self.schema, tantivy.Query
        ids: set[int] | None = None
        for token in sorted({t for t in tokens if is_rare(t)}):
            found = self.selectors.postings_with([rare_term(token)])
            ids = found if ids is None else ids & found
            if not ids:
                return None
        if not ids:
            return None
        by_id = Q.term_set_query(s, "id", sorted(ids))
        if len(tokens) == 1:
            return Q.const_score_query(by_id, 1.0)
        shape: list[str | tuple[int, str]] = [placeholder(t) if is_rare(t) else t for t in tokens]
        matched = Q.boolean_query(
            [(tantivy.Occur.Must, Q.phrase_query(s, "text_tokens", shape)), (tantivy.Occur.Must, by_id)]
        )
        self._index.reload()
        searcher = self._index.searcher()
        hits = searcher.search(matched, limit=RARE_PHRASE_CHECKS + 1).hits
        if len(hits) > RARE_PHRASE_CHECKS:  # too many to read: the placeholders' match stands
            return Q.const_score_query(matched, 1.0)
        wanted = f" {' '.join(tokens)} "
        checked: list[int] = []
        budget = RARE_PHRASE_CHECK_CHARS
        for _, addr in hits:
            doc = searcher.doc(addr)
            raw = doc.get_first("text")
            stored = bytes(raw).decode("utf-8", "replace") if raw is not None else ""
            budget -= len(stored)
            # past the budget, or a text longer than its stored copy (it may hold the phrase past the
            # cut): the placeholders' match stands
            if budget < 0 or len(stored) >= MAX_STORED_CHARS or wanted in f" {token_string(stored)} ":
                checked.append(int(doc.get_first("id") or 0))
        if not checked:
            return None
        return Q.const_score_query(Q.term_set_query(s, "id", sorted(checked)), 1.0)

    def _build(self, node: Node) -> tantivy.Query:
        Q = tantivy.Query
        if isinstance(node, And):
            clauses = [
                (tantivy.Occur.MustNot, self._build(c.child))
                if isinstance(c, Not)
                else (tantivy.Occur.Must, self._build(c))
                for c in node.children
            ]
            if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
                clauses.append((tantivy.Occur.Must, Q.all_query()))
            return Q.boolean_query(clauses)
        if isinstance(node, Or):
            return Q.boolean_query([(tantivy.Occur.Should, self._build(c)) for c in node.children])
        if isinstance(node, Not):
            return Q.boolean_query(
                [(tantivy.Occur.Must, Q.all_query()), (tantivy.Occur.MustNot, self._build(node.child))]
            )
        return self._leaf_query(node)

    def _query(self, q: SearchQuery, root: Node) -> tantivy.Query:
        Q = tantivy.Query
        clauses = [(tantivy.Occur.Must, self._build(root))]
        if q.source:
            clauses.append(
                (tantivy.Occur.Must, Q.const_score_query(Q.term_query(self.schema, "source", q.source), 0.0))
            )
        if q.source_kind:
            clauses.append(
                (
                    tantivy.Occur.Must,
                    Q.const_score_query(Q.term_query(self.schema, "source_kind", q.source_kind), 0.0),
                )
            )
        if q.ids is not None:
            ids_q = (
                Q.term_set_query(self.schema, "id", sorted(q.ids))
                if q.ids
                else Q.boolean_query([(tantivy.Occur.MustNot, Q.all_query())])
            )
            clauses.append((tantivy.Occur.Must, Q.const_score_query(ids_q, 0.0)))
        if q.since is not None or q.until is not None:
            since = to_utc(q.since) if q.since else None
            until = to_utc(q.until) if q.until else None
            if since and until and since > until:
                raise BadInput("--since is after --until")
            date_q = Q.range_query(self.schema, "seen", tantivy.FieldType.Date, since, until)
            clauses.append((tantivy.Occur.Must, Q.const_score_query(date_q, 0.0)))
        return clauses[0][1] if len(clauses) == 1 else Q.boolean_query(clauses)

    def search(self, q: SearchQuery) -> SearchPage:
        if not 1 <= q.limit <= MAX_LIMIT:
            raise BadInput(f"limit must be between 1 and {MAX_LIMIT}")
        root = parse_query(q.text)
        state = decode_cursor(q)
        offset = int(state.get("o", 0)) if state else 0
        if offset < 0:
            raise BadInput("invalid search cursor")
        try:
            query = self._query(q, root)
        except ValueError as exc:  # tantivy refused a term or pattern built from hostile text
            raise BadInput(f"cannot search for this query: {exc}") from None
        self._index.reload()
        searcher = self._index.searcher()
        want = offset + q.limit
        result = searcher.search(query, limit=want + TIE_SORT_MAX + 1, count=True)
        total = int(getattr(result, "count", 0) or 0)
        ordered = self._tie_sorted(searcher, result.hits, offset, want)
        regex = snippet_regex(root)
        hits = [self._hit(searcher, score, addr, regex) for score, addr in ordered[offset:want]]
        next_cursor = encode_cursor(q, {"o": want}) if want < total else None
        return SearchPage(hits, total, next_cursor, self._facets(searcher, query) if total else {})

    def _tie_sorted(self, searcher: Any, hits: list[Any], offset: int, want: int) -> list[Any]:
        """Hits in (score desc, fetched desc, id desc) order for the tie groups that touch the page."""
        out = list(hits)
        start = 0
        while start < min(len(out), want):
            end = start
            while end < len(out) and out[end][0] == out[start][0]:
                end += 1
            complete = end < len(out) or len(out) < want + TIE_SORT_MAX + 1
            if end > offset and end - start > 1 and end - start <= TIE_SORT_MAX and complete:
                group = out[start:end]
                addrs = [addr for _, addr in group]
                fetched = searcher.fast_field_values("fetched_us", addrs)
                ids = searcher.fast_field_values("id", addrs)
                keyed = sorted(
                    zip(group, fetched, ids, strict=True), key=lambda t: (t[1] or 0, t[2] or 0), reverse=True
                )
                out[start:end] = [g for g, _, _ in keyed]
            start = end
        return out

    def _hit(self, searcher: Any, score: float, addr: Any, regex: Any) -> SearchHit:
        doc = searcher.doc(addr)
        raw = doc.get_first("text")
        text = bytes(raw).decode("utf-8", "replace") if raw is not None else ""
        return SearchHit(
            id=int(doc.get_first("id")),
            url=doc.get_first("url") or "",
            source=doc.get_first("source") or "",
            title=doc.get_first("title"),
            published=doc.get_first("published"),
            fetched=doc.get_first("fetched"),
            snippet=make_snippet(text, regex),
            score=float(score),
        )

    def _facets(self, searcher: Any, query: tantivy.Query) -> dict[str, dict[str, int]]:
        aggs = {
            "source": {"terms": {"field": "source", "size": 1000}},
            "day": {"date_histogram": {"field": "seen", "fixed_interval": "1d", "min_doc_count": 1}},
        }
        try:
            res = searcher.aggregate(query, aggs)
        except ValueError:  # e.g. too many day buckets for absurd dates: keep the source counts
            res = searcher.aggregate(query, {"source": aggs["source"]})
        facets: dict[str, dict[str, int]] = {
            "source": {str(b["key"]): int(b["doc_count"]) for b in res.get("source", {}).get("buckets", [])}
        }
        if "day" in res:
            facets["day"] = {
                str(b["key_as_string"])[:10]: int(b["doc_count"])
                for b in res["day"].get("buckets", [])
                if b.get("doc_count")
            }
        return facets
