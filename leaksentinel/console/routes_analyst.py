"""Console pages of analysts: search (a landing page with recent postings, saved queries and syntax help;
highlights, facets, a date histogram, selector pivots) and postings (alerts, reposts, pivots)."""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import re
import urllib.parse
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from core.db import Database
from core.errors import BadInput, NotFound
from leaksentinel.api.auth import Principal
from leaksentinel.console.charts import ACCENT, Series, bar_chart, fill_days
from leaksentinel.console.pages import (
    ALERT_ROLES,
    MAX_PIVOTS,
    PIVOT_KINDS,
    PIVOT_SCAN_CHARS,
    PageError,
    console_of,
    current,
    evidence_view,
    form_value,
    path_number,
    posted,
    redirect,
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
    db = console_of(request).db
    if backend is None:
        from leaksentinel.actions.postings import substring_search

        return substring_search(db, text, source or None)
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
    facets = dict(page.facets)
    from leaksentinel.cli.cmd_search import finding_kind_facet

    facets["finding_kind"] = finding_kind_facet(db, [h.id for h in page.hits])
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
        "facets": facets,
    }


def _posting(db: Database, posting_id: int, who: Principal) -> dict[str, Any]:
    from leaksentinel.actions.postings import posting_detail

    try:
        detail = posting_detail(db, posting_id, tenant_id=who.tenant_id if who.is_tenant else None)
    except NotFound:
        raise PageError(404, "No such posting.") from None
    view = evidence_view(detail["row"])
    view["source"] = detail["source"]
    view["pivots"] = _pivots(detail["row"].text or "")
    view["alerts"] = detail["alerts"]
    view["reposts"] = detail["reposts"]
    view["more_reposts"] = detail["more_reposts"]
    return view


def _filters_of(source: str, since: str, until: str) -> dict[str, str]:
    return {k: v for k, v in (("source", source), ("since", since), ("until", until)) if v}


def _histogram(q: str, source: str, days: dict[str, int]) -> Markup | None:
    """The results' dates as bars (every match, not only this page); a bar opens that day's results."""
    if not days:
        return None
    labels, counts = fill_days(days)
    return bar_chart(
        labels,
        [Series("postings", counts, ACCENT)],
        title=f"Matching postings per day ({labels[0]} to {labels[-1]})",
        width=1000,
        height=140,
        links=["/search?" + urllib.parse.urlencode(_filters_of(source, d, d) | {"q": q}) for d in labels],
    )


@router.get("/search")
def search_page(
    request: Request, q: str = "", source: str = "", since: str = "", until: str = "", after: str = ""
) -> HTMLResponse:
    who, session = current(request, "analyst", "operator")
    from leaksentinel.actions.postings import recent_postings
    from leaksentinel.actions.saved_queries import list_saved_queries
    from leaksentinel.actions.stats import source_names

    db = console_of(request).db
    result: dict[str, Any] | None = None
    error = None
    q = q.strip()
    for value in (source, since, until, after):
        if len(value) > 4096 or "\x00" in value:
            raise PageError(400, "That filter is too long.")
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
    kinds = sorted((facets.get("finding_kind") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
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
        facet_kinds=kinds,
        histogram=_histogram(q, source, facets.get("day") or {}) if result else None,
        source_names=source_names(db),
        saved=list_saved_queries(db, who.actor),
        recent=[] if q else recent_postings(db, 15),
        filters=_filters_of(source, since, until),
    )


@router.post("/search/saved")
async def save_search(request: Request) -> Response:
    """Save the query and filters on the page under a name (the same name replaces it)."""
    who, form = await posted(request, "analyst", "operator")
    from leaksentinel.actions.saved_queries import save_query

    q = form_value(form, "q")
    filters = _filters_of(form_value(form, "source"), form_value(form, "since"), form_value(form, "until"))
    back = "/search?" + urllib.parse.urlencode(filters | {"q": q})
    try:
        saved = await run_in_threadpool(
            lambda: save_query(console_of(request).db, who.actor, form_value(form, "name"), q, filters)
        )
    except BadInput as exc:
        return redirect(request, back, f"Not saved: {exc}")
    return redirect(request, back, f"Saved as \u201c{saved['name']}\u201d.")


@router.post("/search/saved/{query_id}/delete")
async def delete_search(request: Request, query_id: str) -> Response:
    who, _ = await posted(request, "analyst", "operator")
    from leaksentinel.actions.saved_queries import delete_saved_query

    number = path_number(query_id, "saved query")
    try:
        name = await run_in_threadpool(lambda: delete_saved_query(console_of(request).db, who.actor, number))
    except NotFound:
        raise PageError(404, "No such saved query.") from None
    return redirect(request, "/search", f"Deleted the saved query \u201c{name}\u201d.")


@router.get("/postings/{posting_id}")
def posting_page(request: Request, posting_id: str) -> HTMLResponse:
    who, session = current(request, "analyst", "operator")
    posting = _posting(console_of(request).db, path_number(posting_id, "posting"), who)
    return render(
        request,
        "posting.html",
        who=who,
        session=session,
        posting=posting,
        alert_links=who.role in ALERT_ROLES,
    )
