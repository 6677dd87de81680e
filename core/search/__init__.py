"""Full-text and selector search over stored postings: tantivy embedded, PostgreSQL full text in a fleet,
Elasticsearch for the largest deployments.

Usage::

    from core.search import SearchQuery, open_backend

    backend = open_backend(settings)          # per ``search_backend``: tantivy, postgres or elasticsearch
    page = backend.search(SearchQuery("客户数据 acme", since=datetime(2024, 1, 1, tzinfo=UTC)))
    for hit in page.hits:
        print(hit.url, hit.snippet)           # snippet marks matches as [[...]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.search.base import (
    SearchBackend,
    SearchDoc,
    SearchHit,
    SearchPage,
    SearchQuery,
    backend_name,
    extract_selectors,
    is_selector,
    open_backend,
    parse_query,
    selector_terms,
)
from core.search.cjk import token_string, tokenize

if TYPE_CHECKING:
    from collections.abc import Iterator

    from core.db import Database

__all__ = [
    "SearchBackend",
    "SearchDoc",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "backend_name",
    "extract_selectors",
    "is_selector",
    "iter_posting_docs",
    "open_backend",
    "parse_query",
    "reindex",
    "selector_terms",
    "token_string",
    "tokenize",
]


def iter_posting_docs(db: Database, after_id: int = 0, batch: int = 1000) -> Iterator[SearchDoc]:
    """Stored postings (id > `after_id`, in id order) as `SearchDoc`s, read `batch` rows at a time.

    Purged postings (their text emptied by ``purge``) are left out: retention deleted their entries, and a
    rebuild must not bring them back."""
    from sqlalchemy import select

    from core.models import Posting, Source

    last = after_id
    while True:
        with db.session() as sess:
            rows = sess.execute(
                select(Posting, Source.name, Source.kind)
                .join(Source, Source.id == Posting.source_id)
                .where(Posting.id > last, Posting.text != "")
                .order_by(Posting.id)
                .limit(batch)
            ).all()
            docs = [
                SearchDoc(
                    id=p.id,
                    url=p.url,
                    source=name,
                    source_kind=kind,
                    title=p.title,
                    author=p.author,
                    published=p.published,
                    fetched=p.fetched,
                    text=p.text or "",
                )
                for p, name, kind in rows
            ]
        if not docs:
            return
        yield from docs
        last = docs[-1].id


def reindex(db: Database, backend: SearchBackend, after_id: int = 0) -> int:
    """(Re)build the index from the database: after deleting the index, upgrading, or switching backend.

    A full rebuild of the PostgreSQL index also drops entries whose posting is gone or purged (it lives
    on, unlike a tantivy directory one deletes first)."""
    count = backend.index(iter_posting_docs(db, after_id))
    prune = getattr(backend, "prune_orphans", None)
    if after_id == 0 and callable(prune):
        prune()
    return count
