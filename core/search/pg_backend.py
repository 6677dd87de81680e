"""The fleet search backend: PostgreSQL full text in the deployment's own database (table ``search_entries``).

Why PostgreSQL: in a fleet every machine must see every posting, and the database is the one thing every
machine already shares; a per-home tantivy index sees only what its machine crawled. Elasticsearch stays
for the largest deployments.

Same answers as tantivy: text is tokenised in Python by `core.search.cjk` (words + CJK bigrams), so both
backends agree token for token, whatever the database's text-search configuration or locale. Per entry:

- ``tsv`` (tsvector, GIN): every distinct token (title tokens weighted A, body D, with positions for
  ranking). A one-token query is an exact lexeme lookup. A tsvector holds at most 1 MB, so a huge posting
  keeps the tokens that fit and says so (``complete`` false); for those rows the token string below answers.
- ``title_tokens`` / ``body_tokens`` (the tokens joined by single spaces, padded with one space each side,
  trigram GIN from ``pg_trgm``): a phrase is ``LIKE '% a b c %'``, which is exactly tantivy's "these tokens
  at consecutive positions" (``客户数据`` = `` 客户 户数 数据 ``), and a lone CJK character is ``LIKE '%客%'``
  (it only occurs inside CJK tokens). The trigram index makes both index scans, Chinese included, when the
  database's character type knows CJK letters (``C.UTF-8``, ``en_US.UTF-8``...; under plain ``C`` they
  are still found, by a scan).
- ``selectors`` (text[], GIN): the exact terms `extract_selectors` finds, looked up with ``&&``.

Ranking: ``ts_rank`` (title twice body, length-normalised), then fetched (newest first), then id, so the
order is total and the cursor (an offset) pages through every hit once. Total and facets (by source, by
UTC day) come from the same matching set in the same statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import OperationalError as SAOperationalError

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
    positive_leaves,
    snippet_regex,
    to_utc,
)
from core.search.cjk import tokenize

__all__ = ["MAX_LIMIT", "TABLE", "TSVECTOR_BUDGET", "PostgresBackend", "tsvector_literal"]

TABLE = "search_entries"
MAX_LIMIT = 1000
#: Text beyond this is neither tokenised nor scanned for selectors (as in tantivy).
MAX_INDEXED_CHARS = 10_000_000
#: The stored copy used for snippets is cut here.
MAX_STORED_CHARS = 1_000_000
#: PostgreSQL refuses a tsvector of 1 MB or more: tokens past this estimate stay out of ``tsv``.
TSVECTOR_BUDGET = 900_000
#: PostgreSQL keeps at most 256 positions per lexeme and clamps positions at 16383.
MAX_POSITIONS = 256
MAX_POSITION = 16383
#: Rows per INSERT batch (one transaction each).
BATCH = 200
#: A search that runs longer is cancelled (hostile or absurd queries must not hold a connection).
STATEMENT_TIMEOUT_MS = 30_000
#: ts_rank weights {D, C, B, A}: body tokens are D, title tokens A (tantivy boosts titles 2x too).
RANK_WEIGHTS = "{0.5,0.5,0.5,1.0}"
_TRANSIENT = frozenset({"40001", "40P01"})


def _clean(value: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogate."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _quote_lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(title_tokens: list[str], body_tokens: list[str]) -> tuple[str, bool]:
    """The tsvector (as PostgreSQL's input text) of these tokens, and whether every token fit the budget.

    Why built here and not with ``to_tsvector``: PostgreSQL's parser would split and drop tokens its own
    way (CJK letters vanish under a ``C`` locale); the tokens must be exactly `core.search.cjk`'s."""
    positions: dict[str, list[str]] = {}
    size = 0
    complete = True
    pos = 0
    for weight, tokens in (("A", title_tokens), ("", body_tokens)):
        for token in tokens:
            pos = min(pos + 1, MAX_POSITION)
            found = positions.get(token)
            if found is None:
                cost = len(token.encode("utf-8")) + 8
                if size + cost > TSVECTOR_BUDGET:
                    complete = False
                    continue
                size += cost
                positions[token] = [f"{pos}{weight}"]
            elif len(found) < MAX_POSITIONS and size + 2 <= TSVECTOR_BUDGET:
                size += 2
                found.append(f"{pos}{weight}")
    return " ".join(f"{_quote_lexeme(t)}:{','.join(p)}" for t, p in positions.items()), complete


def _padded(tokens: list[str]) -> str:
    return " " + " ".join(tokens) + " "


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tsquery_or(tokens: Iterable[str]) -> str:
    return " | ".join(_quote_lexeme(t) for t in dict.fromkeys(tokens))


_UPSERT = f"""
INSERT INTO {TABLE} (posting_id, url, source, source_kind, title, author, published, fetched, seen,
                     body, title_tokens, body_tokens, tsv, complete, selectors)
VALUES (:posting_id, :url, :source, :source_kind, :title, :author, :published, :fetched, :seen,
        :body, :title_tokens, :body_tokens, CAST(:tsv AS tsvector), :complete, CAST(:selectors AS text[]))
ON CONFLICT (posting_id) DO UPDATE SET
    url = EXCLUDED.url, source = EXCLUDED.source, source_kind = EXCLUDED.source_kind,
    title = EXCLUDED.title, author = EXCLUDED.author, published = EXCLUDED.published,
    fetched = EXCLUDED.fetched, seen = EXCLUDED.seen, body = EXCLUDED.body,
    title_tokens = EXCLUDED.title_tokens, body_tokens = EXCLUDED.body_tokens, tsv = EXCLUDED.tsv,
    complete = EXCLUDED.complete, selectors = EXCLUDED.selectors
"""


class _Compiler:
    """The parsed query as one SQL boolean expression over ``search_entries``, values as bound parameters."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def leaf(self, leaf: Node) -> str:
        if isinstance(leaf, SelectorLeaf):
            return f"(selectors && CAST({self.bind(list(leaf.terms))} AS text[]))"
        if isinstance(leaf, CharLeaf):
            p = self.bind(f"%{_like_escape(leaf.char)}%")
            return f"(body_tokens LIKE {p} OR title_tokens LIKE {p})"
        if isinstance(leaf, TokensLeaf):
            like = self.bind(f"%{_like_escape(_padded(list(leaf.tokens)))}%")
            if len(leaf.tokens) == 1:
                q = self.bind(_quote_lexeme(leaf.tokens[0]))
                return f"(tsv @@ CAST({q} AS tsquery) OR (NOT complete AND body_tokens LIKE {like}))"
            return f"(body_tokens LIKE {like} OR title_tokens LIKE {like})"
        raise TypeError(f"not a leaf: {leaf!r}")

    def build(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.build(c) for c in node.children) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.build(c) for c in node.children) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.build(node.child)})"
        return self.leaf(node)


class PostgresBackend:
    """`SearchBackend` over the ``search_entries`` table (created by migration 0009) of a PostgreSQL database.

    ``engine``: the deployment's engine (`core.db.open_database(settings).engine`), shared and not
    disposed by `close`; or use `from_url`, whose engine `close` disposes."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        if engine.dialect.name != "postgresql":
            raise BadInput(
                "the postgres search backend needs a PostgreSQL database_url "
                f'(this database is {engine.dialect.name}); use search_backend = "tantivy"'
            )
        self.engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def from_url(cls, url: str) -> PostgresBackend:
        return cls(create_engine(url, pool_pre_ping=True), owns_engine=True)

    # ------------------------------------------------------------------ writing

    def _row(self, d: SearchDoc) -> dict[str, Any]:
        body = d.text[:MAX_INDEXED_CHARS]
        title = (d.title or "")[:512]
        title_tokens = tokenize(title) if title else []
        body_tokens = tokenize(body)
        tsv, complete = tsvector_literal(title_tokens, body_tokens)
        return {
            "posting_id": int(d.id),
            "url": _clean(d.url[:2048]),
            "source": _clean(d.source),
            "source_kind": _clean(d.source_kind),
            "title": _clean(title) if d.title else None,
            "author": _clean(d.author[:256]) if d.author else None,
            "published": to_utc(d.published) if d.published is not None else None,
            "fetched": to_utc(d.fetched),
            "seen": d.seen,
            "body": _clean(d.text[:MAX_STORED_CHARS]),
            "title_tokens": _padded(title_tokens),
            "body_tokens": _padded(body_tokens),
            "tsv": tsv,
            "complete": complete,
            "selectors": sorted(_clean(s) for s in extract_selectors(f"{d.title or ''}\n{body}")),
        }

    def _write(self, statement: str, params: Any) -> int:
        """One transaction, run again on a deadlock or serialization failure (two writers, one posting)."""
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    result = conn.execute(text(statement), params)
                    return int(result.rowcount or 0)
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in _TRANSIENT or attempt == 4:
                    raise self._error(exc) from None
        raise AssertionError("unreachable")

    def _error(self, exc: DBAPIError) -> Exception:
        if isinstance(exc, SAOperationalError):
            return OperationalError(f"PostgreSQL search: {' '.join(str(exc.orig).split())[:300]}")
        if isinstance(exc, DataError):
            return BadInput(f"search refused the query: {' '.join(str(exc.orig).split())[:200]}")
        if "search_entries" in str(exc.orig) and "does not exist" in str(exc.orig):
            return OperationalError(
                "the search_entries table is missing: open the database with leaksentinel (it migrates) and reindex"
            )
        return exc

    def index(self, docs: Iterable[SearchDoc]) -> int:
        """Add or replace (by id) postings, `BATCH` per transaction; visible to searches once this returns."""
        count = 0
        pending: dict[int, SearchDoc] = {}
        for d in docs:
            pending[d.id] = d  # the last version of a posting wins, as in tantivy
            if len(pending) >= BATCH:
                count += self._upsert(list(pending.values()))
                pending = {}
        count += self._upsert(list(pending.values()))
        return count

    def _upsert(self, docs: list[SearchDoc]) -> int:
        if not docs:
            return 0
        # Rows in id order: two processes writing overlapping postings lock them in the same order.
        rows = [self._row(d) for d in sorted(docs, key=lambda d: d.id)]
        self._write(_UPSERT, rows)
        return len(rows)

    def delete(self, ids: Iterable[int]) -> int:
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return 0
        return self._write(
            f"DELETE FROM {TABLE} WHERE posting_id = ANY(CAST(:ids AS bigint[]))", {"ids": wanted}
        )

    def prune_orphans(self) -> int:
        """Delete entries whose posting no longer exists or was purged (text emptied); `reindex` calls it."""
        return self._write(
            f"DELETE FROM {TABLE} s WHERE NOT EXISTS "
            "(SELECT 1 FROM posting_texts t WHERE t.posting_id = s.posting_id)",  # purged: no text row
            {},
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar_one())

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    # ------------------------------------------------------------------ querying

    def _where(self, q: SearchQuery, root: Node, c: _Compiler) -> str:
        parts = [c.build(root)]
        if q.source:
            parts.append(f"source = {c.bind(q.source)}")
        if q.source_kind:
            parts.append(f"source_kind = {c.bind(q.source_kind)}")
        if q.ids is not None:
            parts.append(f"posting_id = ANY(CAST({c.bind(sorted(q.ids))} AS bigint[]))")
        since = to_utc(q.since) if q.since else None
        until = to_utc(q.until) if q.until else None
        if since and until and since > until:
            raise BadInput("--since is after --until")
        if since:
            parts.append(f"seen >= {c.bind(since)}")
        if until:
            parts.append(f"seen <= {c.bind(until)}")
        return " AND ".join(parts)

    def search(self, q: SearchQuery) -> SearchPage:
        if not 1 <= q.limit <= MAX_LIMIT:
            raise BadInput(f"limit must be between 1 and {MAX_LIMIT}")
        root = parse_query(q.text)
        state = decode_cursor(q)
        offset = int(state.get("o", 0)) if state else 0
        if offset < 0:
            raise BadInput("invalid search cursor")
        c = _Compiler()
        where = self._where(q, root, c)
        rank_tokens = [
            t for leaf in positive_leaves(root) if isinstance(leaf, TokensLeaf) for t in leaf.tokens
        ]
        if rank_tokens:
            rank = (
                f"ts_rank(CAST({c.bind(RANK_WEIGHTS)} AS real[]), tsv, "
                f"CAST({c.bind(_tsquery_or(rank_tokens))} AS tsquery), 1)"
            )
        else:
            rank = "CAST(0 AS real)"
        sql = f"""
            WITH m AS MATERIALIZED (
                SELECT posting_id, source, seen, fetched, {rank} AS rank FROM {TABLE} WHERE {where}
            )
            SELECT 'p' AS k, NULL AS key, posting_id AS n,
                   row_number() OVER (ORDER BY rank DESC, fetched DESC, posting_id DESC) AS ord, rank
              FROM (SELECT * FROM m ORDER BY rank DESC, fetched DESC, posting_id DESC
                    OFFSET :offset LIMIT :limit) page
            UNION ALL
            SELECT 's', source, count(*), NULL, NULL FROM m GROUP BY source
            UNION ALL
            SELECT 'd', to_char(seen AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*), NULL, NULL FROM m GROUP BY 2
        """
        params = {**c.params, "offset": offset, "limit": q.limit}
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                rows = conn.execute(text(sql), params).all()
                page = sorted((r for r in rows if r.k == "p"), key=lambda r: r.ord)
                docs = self._fetch(conn, [int(r.n) for r in page])
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":
                raise OperationalError(
                    f"search took longer than {STATEMENT_TIMEOUT_MS // 1000} s: narrow the query"
                ) from None
            raise self._error(exc) from None
        facets: dict[str, dict[str, int]] = {"source": {}, "day": {}}
        for r in rows:
            if r.k == "s":
                facets["source"][str(r.key)] = int(r.n)
            elif r.k == "d":
                facets["day"][str(r.key)] = int(r.n)
        total = sum(facets["source"].values())
        regex = snippet_regex(root)
        hits = [self._hit(docs[int(r.n)], float(r.rank), regex) for r in page if int(r.n) in docs]
        want = offset + q.limit
        next_cursor = encode_cursor(q, {"o": want}) if want < total else None
        return SearchPage(hits, total, next_cursor, facets if total else {})

    @staticmethod
    def _fetch(conn: Any, ids: list[int]) -> dict[int, Any]:
        if not ids:
            return {}
        rows = conn.execute(
            text(
                f"SELECT posting_id, url, source, title, published, fetched, body FROM {TABLE} "
                "WHERE posting_id = ANY(CAST(:ids AS bigint[]))"
            ),
            {"ids": ids},
        ).all()
        return {int(r.posting_id): r for r in rows}

    @staticmethod
    def _hit(row: Any, score: float, regex: re.Pattern[str] | None) -> SearchHit:
        published: datetime | None = to_utc(row.published) if row.published is not None else None
        return SearchHit(
            id=int(row.posting_id),
            url=row.url,
            source=row.source,
            title=row.title,
            published=published,
            fetched=to_utc(row.fetched),
            snippet=make_snippet(row.body or "", regex),
            score=score,
        )
