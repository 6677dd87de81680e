"""UNTESTED without a server: no Elasticsearch runs where this was written; the shared suite in
tests/core/test_core_search.py runs against it when ``LEAKSENTINEL_TEST_ES_URL`` is set.

The distributed search backend: the same `SearchBackend` interface over Elasticsearch 8/9, used when
``search_url`` is set. Why the same query tree as tantivy (`core.search.base.parse_query`): the CLI and
API must answer a query the same way whichever backend runs.

Mapping (an index template, so a recreated index gets it too): ``text``/``title`` analysed by the
standard tokenizer + ``cjk_width`` + ``lowercase`` + ``cjk_bigram`` (CJK runs become overlapping
bigrams, like `core.search.cjk`), keyword fields for source, kind, url, author, and ``selectors`` (the
exact terms `extract_selectors` finds, computed in Python so both backends agree). Indexing goes
through ``helpers.bulk``; search uses ``highlight`` (``[[``/``]]`` marks), ``terms`` and
``date_histogram`` aggregations for facets, and a point in time + ``search_after`` for the cursor,
so paging works past 10,000 hits. The client is imported lazily: the ``es`` extra is optional.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from core.errors import BadInput, OperationalError
from core.search.base import (
    MARK_CLOSE,
    MARK_OPEN,
    SNIPPET_CHARS,
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
    positive_leaves,
    snippet_regex,
    to_utc,
)

__all__ = ["INDEX_NAME", "TEMPLATE", "ElasticsearchBackend"]

INDEX_NAME = "leaksentinel-postings"
MAX_LIMIT = 1000
#: Elasticsearch highlights at most 1,000,000 analysed characters by default; text beyond is not stored.
MAX_TEXT_CHARS = 1_000_000
MAX_SELECTOR_SCAN_CHARS = 10_000_000
PIT_KEEP_ALIVE = "10m"

TEMPLATE: dict[str, Any] = {
    "settings": {
        "analysis": {
            "analyzer": {
                "ls_text": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["cjk_width", "lowercase", "cjk_bigram"],
                }
            }
        }
    },
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "id": {"type": "long"},
            "url": {"type": "keyword", "ignore_above": 2048},
            "source": {"type": "keyword"},
            "source_kind": {"type": "keyword"},
            "title": {"type": "text", "analyzer": "ls_text"},
            "author": {"type": "keyword", "ignore_above": 256},
            "text": {"type": "text", "analyzer": "ls_text"},
            "selectors": {"type": "keyword", "ignore_above": 512},
            "published": {"type": "date"},
            "fetched": {"type": "date"},
            "seen": {"type": "date"},
        },
    },
}


class ElasticsearchBackend:
    """`SearchBackend` over an Elasticsearch cluster at `url` (index ``leaksentinel-postings``)."""

    def __init__(self, url: str, index: str = INDEX_NAME, client: Any = None) -> None:
        try:
            import elasticsearch
        except ImportError:
            raise OperationalError(
                "search_url is set but the Elasticsearch client is missing: pip install 'leaksentinel[es]'"
            ) from None
        self._es_mod = elasticsearch
        self.index_name = index
        self.es = client if client is not None else elasticsearch.Elasticsearch(url, request_timeout=30)
        self._ensure_index()

    # ------------------------------------------------------------------ setup and errors

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, turning its exceptions into leaksentinel's (bad query → BadInput)."""
        es = self._es_mod
        try:
            return fn(*args, **kwargs)
        except es.BadRequestError as exc:
            raise BadInput(f"search refused the query: {exc.message}") from None
        except (es.ConnectionError, es.ApiError) as exc:
            raise OperationalError(f"Elasticsearch: {exc}") from None

    def _ensure_index(self) -> None:
        self._call(
            self.es.indices.put_index_template,
            name=self.index_name,
            index_patterns=[f"{self.index_name}*"],
            template=TEMPLATE,
            priority=100,
        )
        if not self._call(self.es.indices.exists, index=self.index_name):
            try:
                self.es.indices.create(index=self.index_name)
            except self._es_mod.BadRequestError as exc:  # created meanwhile by another process
                if "resource_already_exists" not in str(exc):
                    raise BadInput(f"cannot create the search index: {exc.message}") from None

    # ------------------------------------------------------------------ writing

    def _source(self, d: SearchDoc) -> dict[str, Any]:
        return {
            "id": d.id,
            "url": d.url,
            "source": d.source,
            "source_kind": d.source_kind,
            "title": d.title,
            "author": d.author,
            "text": d.text[:MAX_TEXT_CHARS],
            "selectors": sorted(extract_selectors(f"{d.title or ''}\n{d.text[:MAX_SELECTOR_SCAN_CHARS]}")),
            "published": to_utc(d.published).isoformat() if d.published else None,
            "fetched": to_utc(d.fetched).isoformat(),
            "seen": d.seen.isoformat(),
        }

    def index(self, docs: Iterable[SearchDoc]) -> int:
        def actions() -> Iterator[dict[str, Any]]:
            for d in docs:
                yield {
                    "_op_type": "index",
                    "_index": self.index_name,
                    "_id": str(d.id),
                    "_source": self._source(d),
                }

        ok, _ = self._call(
            self._es_mod.helpers.bulk, self.es, actions(), chunk_size=500, refresh="wait_for", stats_only=True
        )
        return int(ok)

    def delete(self, ids: Iterable[int]) -> int:
        actions = [{"_op_type": "delete", "_index": self.index_name, "_id": str(int(i))} for i in ids]
        if not actions:
            return 0
        ok, _ = self._call(
            self._es_mod.helpers.bulk,
            self.es,
            actions,
            refresh="wait_for",
            stats_only=True,
            raise_on_error=False,
        )
        return int(ok)

    def count(self) -> int:
        return int(self._call(self.es.count, index=self.index_name)["count"])

    def close(self) -> None:
        self.es.close()

    # ------------------------------------------------------------------ querying

    def _leaf(self, leaf: Node) -> dict[str, Any]:
        if isinstance(leaf, SelectorLeaf):
            return {"terms": {"selectors": list(leaf.terms)}}
        if isinstance(leaf, CharLeaf):
            return {
                "bool": {
                    "should": [
                        {"wildcard": {"text": {"value": f"*{leaf.char}*"}}},
                        {"wildcard": {"title": {"value": f"*{leaf.char}*", "boost": 2.0}}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        if isinstance(leaf, TokensLeaf):
            return {"multi_match": {"query": leaf.text, "type": "phrase", "fields": ["text", "title^2"]}}
        raise TypeError(f"not a leaf: {leaf!r}")

    def _build(self, node: Node) -> dict[str, Any]:
        if isinstance(node, And):
            must = [self._build(c) for c in node.children if not isinstance(c, Not)]
            must_not = [self._build(c.child) for c in node.children if isinstance(c, Not)]
            return {"bool": {"must": must or [{"match_all": {}}], "must_not": must_not}}
        if isinstance(node, Or):
            return {"bool": {"should": [self._build(c) for c in node.children], "minimum_should_match": 1}}
        if isinstance(node, Not):
            return {"bool": {"must": [{"match_all": {}}], "must_not": [self._build(node.child)]}}
        return self._leaf(node)

    def _query(self, q: SearchQuery, root: Node) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        if q.source:
            filters.append({"term": {"source": q.source}})
        if q.source_kind:
            filters.append({"term": {"source_kind": q.source_kind}})
        if q.ids is not None:
            filters.append({"ids": {"values": [str(i) for i in sorted(q.ids)]}})
        if q.since is not None or q.until is not None:
            since = to_utc(q.since) if q.since else None
            until = to_utc(q.until) if q.until else None
            if since and until and since > until:
                raise BadInput("--since is after --until")
            bounds: dict[str, str] = {}
            if since:
                bounds["gte"] = since.isoformat()
            if until:
                bounds["lte"] = until.isoformat()
            filters.append({"range": {"seen": bounds}})
        return {"bool": {"must": [self._build(root)], "filter": filters}}

    def search(self, q: SearchQuery) -> SearchPage:
        if not 1 <= q.limit <= MAX_LIMIT:
            raise BadInput(f"limit must be between 1 and {MAX_LIMIT}")
        root = parse_query(q.text)
        state = decode_cursor(q)
        query = self._query(q, root)
        pit_id = state.get("pit") if state else None
        if pit_id is None:
            pit_id = self._call(self.es.open_point_in_time, index=self.index_name, keep_alive=PIT_KEEP_ALIVE)[
                "id"
            ]
        leaves = [self._leaf(leaf) for leaf in positive_leaves(root) if not isinstance(leaf, SelectorLeaf)]
        kwargs: dict[str, Any] = {
            "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE},
            "query": query,
            "size": q.limit,
            "sort": [{"_score": "desc"}, {"fetched": "desc"}, {"id": "desc"}],
            "track_total_hits": True,
            "source_excludes": ["text", "selectors"],
            "aggs": {
                "source": {"terms": {"field": "source", "size": 1000}},
                "day": {"date_histogram": {"field": "seen", "calendar_interval": "day", "min_doc_count": 1}},
            },
        }
        if leaves:
            kwargs["highlight"] = {
                "pre_tags": [MARK_OPEN],
                "post_tags": [MARK_CLOSE],
                "fields": {"text": {"fragment_size": SNIPPET_CHARS, "number_of_fragments": 1}},
                "highlight_query": {"bool": {"should": leaves}},
                "max_analyzed_offset": MAX_TEXT_CHARS - 1,
            }
        if state and state.get("sa") is not None:
            kwargs["search_after"] = state["sa"]
        resp = self._call(self.es.search, **kwargs)
        pit_id = resp.get("pit_id", pit_id)
        raw_hits = resp["hits"]["hits"]
        total = int(resp["hits"]["total"]["value"])
        hits = self._hits(raw_hits, root)
        seen_before = int(state.get("n", 0)) if state else 0
        shown = seen_before + len(raw_hits)
        next_cursor = None
        if raw_hits and shown < total:
            next_cursor = encode_cursor(q, {"pit": pit_id, "sa": raw_hits[-1]["sort"], "n": shown})
        else:
            self._close_pit(pit_id)
        return SearchPage(hits, total, next_cursor, self._facets(resp.get("aggregations", {})))

    def _close_pit(self, pit_id: str) -> None:
        with contextlib.suppress(self._es_mod.ApiError):  # expired already: nothing to free
            self.es.close_point_in_time(id=pit_id)

    def _hits(self, raw_hits: list[dict[str, Any]], root: Node) -> list[SearchHit]:
        missing = [h["_id"] for h in raw_hits if not h.get("highlight", {}).get("text")]
        texts: dict[str, str] = {}
        if missing:  # selector queries, title-only matches: mark the text in Python instead
            docs = self._call(self.es.mget, index=self.index_name, ids=missing, source_includes=["text"])
            texts = {d["_id"]: d.get("_source", {}).get("text", "") for d in docs["docs"] if d.get("found")}
        regex = snippet_regex(root)
        out = []
        for h in raw_hits:
            src = h["_source"]
            fragments = h.get("highlight", {}).get("text")
            snippet = (
                " ".join(fragments[0].split()) if fragments else make_snippet(texts.get(h["_id"], ""), regex)
            )
            out.append(
                SearchHit(
                    id=int(src["id"]),
                    url=src.get("url") or "",
                    source=src.get("source") or "",
                    title=src.get("title"),
                    published=_parse_date(src.get("published")),
                    fetched=_parse_date(src.get("fetched")) or datetime.fromtimestamp(0, UTC),
                    snippet=snippet,
                    score=float(h.get("_score") or 0.0),
                )
            )
        return out

    @staticmethod
    def _facets(aggs: dict[str, Any]) -> dict[str, dict[str, int]]:
        return {
            "source": {str(b["key"]): int(b["doc_count"]) for b in aggs.get("source", {}).get("buckets", [])},
            "day": {
                str(b.get("key_as_string", ""))[:10]: int(b["doc_count"])
                for b in aggs.get("day", {}).get("buckets", [])
                if b.get("doc_count")
            },
        }


def _parse_date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return to_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None
