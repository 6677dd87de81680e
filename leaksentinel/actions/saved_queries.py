"""Saved searches: an analyst's named query with its filters, listed on the search landing page.

Why per owner: an analyst's working list is theirs; the owner is the caller's actor (``key:ID:role``), so
one key never lists, runs or deletes another key's saved queries (another owner's id is NotFound, as a
missing one). Saving under a name the owner already used replaces that query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import SavedQuery

__all__ = ["FILTER_KEYS", "MAX_SAVED", "delete_saved_query", "list_saved_queries", "save_query"]

#: Filters a saved query may carry (what the search page takes besides the text).
FILTER_KEYS = ("source", "since", "until")
MAX_SAVED = 200
MAX_NAME = 128
MAX_QUERY = 4096


def _view(row: SavedQuery) -> dict[str, Any]:
    filters = row.filters if isinstance(row.filters, dict) else {}
    return {
        "id": row.id,
        "name": row.name,
        "query": row.query,
        "filters": {k: str(filters[k]) for k in FILTER_KEYS if filters.get(k)},
        "created_at": row.created_at,
    }


def list_saved_queries(db: Database, owner: str) -> list[dict[str, Any]]:
    """The owner's saved queries, by name."""
    with db.session() as sess:
        rows = sess.scalars(select(SavedQuery).where(SavedQuery.owner == owner).order_by(SavedQuery.name))
        return [_view(r) for r in rows]


def save_query(
    db: Database, owner: str, name: str, query: str, filters: dict[str, str] | None = None
) -> dict[str, Any]:
    """Save (or replace, by name) one of the owner's queries; BadInput for an empty or oversized one."""
    name, query = " ".join((name or "").split()), (query or "").strip()
    if not name:
        raise BadInput("give the saved query a name")
    if len(name) > MAX_NAME:
        raise BadInput(f"a saved query's name is at most {MAX_NAME} characters")
    if not query:
        raise BadInput("there is no query to save")
    if len(query) > MAX_QUERY or "\x00" in query or "\x00" in name:
        raise BadInput(f"a saved query is at most {MAX_QUERY} characters, without NUL")
    clean = {
        k: str(v)[:64] for k, v in (filters or {}).items() if k in FILTER_KEYS and v and "\x00" not in str(v)
    }
    with db.session() as sess:
        row = sess.scalar(select(SavedQuery).where(SavedQuery.owner == owner, SavedQuery.name == name))
        if row is None:
            count = sess.scalar(select(func.count()).select_from(SavedQuery).where(SavedQuery.owner == owner))
            if int(count or 0) >= MAX_SAVED:
                raise BadInput(f"at most {MAX_SAVED} saved queries: delete some first")
            row = SavedQuery(owner=owner, name=name, query=query, filters=clean)
            sess.add(row)
        else:
            row.query, row.filters = query, clean
        sess.flush()
        return _view(row)


def delete_saved_query(db: Database, owner: str, query_id: int) -> str:
    """Delete one of the owner's saved queries; returns its name. Another owner's is NotFound."""
    with db.session() as sess:
        row = sess.get(SavedQuery, query_id)
        if row is None or row.owner != owner:
            raise NotFound(f"unknown saved query: {query_id}")
        name = row.name
        sess.delete(row)
        return name
