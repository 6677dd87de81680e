"""Console pages of analysts: search (with highlights, facets and selector pivots) and postings."""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from core.db import Database
from core.errors import BadInput
from core.models import Alert, Posting, Source
from leaksentinel.console.pages import (
    MAX_PIVOTS,
    PIVOT_KINDS,
    PIVOT_SCAN_CHARS,
    PageError,
    console_of,
    current,
    evidence_view,
    path_number,
    render,
)

router = APIRouter(include_in_schema=False)


def _pivots(text: str) -> list[tuple[str, str]]:
    """Emails, domains and IPs in a posting, as (kind, value): each becomes an internal search link."""
    scan = text[:PIVOT_SCAN_CHARS]
    try:
        from core.search import extract_selectors, is_selector
    except ImportError:  # search not installed: a plain pattern for emails and IPv4 addresses
        found = set(re.findall(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+", scan))
        found |= set(re.findall(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", scan))
        return sorted(("email" if "@" in v else "ipv4", v.lower()) for v in found)[:MAX_PIVOTS]
    out = []
    for value in extract_selectors(scan):
        kind = is_selector(value)
        if kind in PIVOT_KINDS:
            out.append((kind, value))
    order = {k: i for i, k in enumerate(PIVOT_KINDS)}
    return sorted(out, key=lambda kv: (order[kv[0]], kv[1]))[:MAX_PIVOTS]


def _search_backend(request: Request) -> Any:
    """A search backend for one request (as the API opens one); None when `core.search` is missing."""
    try:
        from core.search import open_backend
    except ImportError:
        return None
    return open_backend(console_of(request).settings)


def _parse_day(value: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise PageError(400, f"Not a date: {value!r} (use YYYY-MM-DD).") from None
    from datetime import UTC, timedelta

    day = day.replace(tzinfo=UTC)
    return day + timedelta(days=1, microseconds=-1) if end else day


def _run_search(
    request: Request, text: str, source: str, since: str, until: str, after: str
) -> dict[str, Any]:
    backend = _search_backend(request)
    if backend is None:
        return _sql_search(console_of(request).db, text, source or None)
    from core.search import SearchQuery

    try:
        page = backend.search(
            SearchQuery(
                text,
                source=source or None,
                since=_parse_day(since),
                until=_parse_day(until, end=True),
                limit=20,
                after=after or None,
            )
        )
    finally:
        backend.close()
    return {
        "hits": [
            {
                "id": h.id,
                "url": h.url,
                "source": h.source,
                "title": h.title,
                "when": h.published or h.fetched,
                "snippet": h.snippet,
            }
            for h in page.hits
        ],
        "total": page.total,
        "next_cursor": page.next_cursor,
        "facets": page.facets,
    }


def _sql_search(db: Database, text: str, source: str | None) -> dict[str, Any]:
    """Without `core.search`: a bounded substring search over posting text (50 newest), facets over them."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with db.session() as sess:
        query = (
            select(Posting, Source.name)
            .join(Source, Source.id == Posting.source_id)
            .where(Posting.text.like(pattern, escape="\\"))
            .order_by(Posting.id.desc())
            .limit(50)
        )
        if source:
            query = query.where(Source.name == source)
        rows = sess.execute(query).all()
        hits = []
        facets: dict[str, dict[str, int]] = {"source": {}, "day": {}}
        for p, name in rows:
            body = p.text or ""
            at = body.lower().find(text.lower())
            start = max(0, at - 60)
            window = body[start : at + len(text) + 120]
            rel = at - start
            snippet = window[:rel] + "[[" + window[rel : rel + len(text)] + "]]" + window[rel + len(text) :]
            when = p.published or p.fetched
            hits.append(
                {"id": p.id, "url": p.url, "source": name, "title": p.title, "when": when, "snippet": snippet}
            )
            facets["source"][name] = facets["source"].get(name, 0) + 1
            day = when.strftime("%Y-%m-%d")
            facets["day"][day] = facets["day"].get(day, 0) + 1
    return {"hits": hits, "total": len(hits), "next_cursor": None, "facets": facets}


def _posting(db: Database, posting_id: int) -> dict[str, Any]:
    with db.session() as sess:
        row = sess.get(Posting, posting_id)
        if row is None:
            raise PageError(404, "No such posting.")
        source = sess.get(Source, row.source_id)
        view = evidence_view(row)
        view["source"] = source.name if source else ""
        view["pivots"] = _pivots(row.text or "")
        view["alerts"] = int(
            sess.scalar(select(func.count()).select_from(Alert).where(Alert.posting_id == row.id)) or 0
        )
        return view


@router.get("/search")
def search_page(
    request: Request, q: str = "", source: str = "", since: str = "", until: str = "", after: str = ""
) -> HTMLResponse:
    who, session = current(request, "analyst", "operator")
    result: dict[str, Any] | None = None
    error = None
    q = q.strip()
    if q:
        if len(q) > 4096:
            raise PageError(400, "That query is too long.")
        try:
            result = _run_search(request, q, source, since, until, after)
        except PageError:
            raise
        except BadInput as exc:
            error = str(exc)
    facets = (result or {}).get("facets") or {}
    days = sorted((facets.get("day") or {}).items(), reverse=True)[:31]
    sources = sorted((facets.get("source") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return render(
        request,
        "search.html",
        who=who,
        session=session,
        q=q,
        source=source,
        since=since,
        until=until,
        result=result,
        error=error,
        facet_sources=sources,
        facet_days=days,
    )


@router.get("/postings/{posting_id}")
def posting_page(request: Request, posting_id: str) -> HTMLResponse:
    who, session = current(request, "analyst", "operator")
    posting = _posting(console_of(request).db, path_number(posting_id, "posting"))
    return render(request, "posting.html", who=who, session=session, posting=posting)
