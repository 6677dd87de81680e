"""``search QUERY``: words, phrases (Chinese included) or a selector, over every stored posting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape

from core.db import Database
from core.errors import BadInput
from core.search import SearchQuery, open_backend
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_list

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON), one posting per line.")]


def parse_when(value: str | None, end_of_day: bool = False) -> datetime | None:
    """``2024-05-01`` or an ISO datetime; a bare date as --until means the end of that day (UTC)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"not a date: {value!r} (expected YYYY-MM-DD or an ISO datetime)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def tenant_posting_ids(db: Database, tenant_ref: str) -> frozenset[int]:
    """The postings holding at least one finding for this tenant (the "tenant-relevant" filter)."""
    from sqlalchemy import select

    from core.models import Finding
    from leaksentinel.actions.tenants import find_tenant

    with db.session() as sess:
        tenant = find_tenant(sess, tenant_ref)
        return frozenset(
            sess.scalars(select(Finding.posting_id).where(Finding.tenant_id == tenant.id).distinct())
        )


def finding_kind_facet(db: Database, posting_ids: list[int]) -> dict[str, int]:
    """Postings per kind of finding, among the given postings."""
    from sqlalchemy import func, select

    from core.models import Finding

    if not posting_ids:
        return {}
    with db.session() as sess:
        rows = sess.execute(
            select(Finding.kind, func.count(func.distinct(Finding.posting_id)))
            .where(Finding.posting_id.in_(posting_ids))
            .group_by(Finding.kind)
        ).all()
    return {str(kind): int(n) for kind, n in rows}


def _has_postings(db: Database) -> bool:
    """Whether any posting still holds text (what an index would hold)."""
    from sqlalchemy import select

    from core.models import Posting

    with db.session() as sess:
        return sess.scalar(select(Posting.id).where(Posting.text != "").limit(1)) is not None


def register(app: typer.Typer) -> None:
    # A query may start with "-" (`-test acme`): unknown options are read as the query, not refused.
    @app.command("search", context_settings={"ignore_unknown_options": True})
    def _search(
        query: Annotated[
            str, typer.Argument(help='Words, "a phrase", 客户数据, a OR b, -word, or an email/IP/hash...')
        ],
        source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
        since: Annotated[str | None, typer.Option("--since", help="Posted on or after (YYYY-MM-DD).")] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="Posted on or before (YYYY-MM-DD).")
        ] = None,
        limit: Annotated[int, typer.Option("--limit", help="At most this many postings.")] = 20,
        kind: Annotated[
            str | None, typer.Option("--kind", help="Only sources of this kind (pastebin, phpbb...).")
        ] = None,
        tenant: Annotated[
            str | None, typer.Option("--tenant", help="Only postings with findings for this tenant.")
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Search the collected postings; only postings that match, best first."""
        if query.startswith("--"):
            raise BadInput(f"no such option: {query.split('=', 1)[0]} (try: leaksentinel search --help)")
        q = SearchQuery(
            query,
            source=source,
            since=parse_when(since),
            until=parse_when(until, end_of_day=True),
            limit=limit,
            source_kind=kind,
            ids=tenant_posting_ids(state.db, tenant) if tenant else None,
        )
        backend = open_backend(state.settings)
        try:
            page = backend.search(q)
            if page.total == 0 and backend.count() == 0 and _has_postings(state.db):
                # After an upgrade to the PostgreSQL index, or a deleted index directory: say how to fill it.
                typer.echo(
                    "leaksentinel: the search index is empty but the database holds postings: "
                    "run `leaksentinel reindex`",
                    err=True,
                )
        finally:
            backend.close()
        rows = [hit.to_json() for hit in page.hits]
        if not as_json:  # a table for people: one date column, and [[marks]] kept literal (not rich markup)
            rows = [
                {**r, "date": (r["published"] or r["fetched"])[:16], "snippet": escape(r["snippet"])}
                for r in rows
            ]
        emit_list(rows, as_json, ["id", "source", "date", "title", "url", "snippet"], title="postings")


def register_reindex(app: typer.Typer) -> None:
    @app.command("reindex")
    def _reindex(as_json: JSON = False) -> None:
        """Rebuild the search index from the database (after deleting it, upgrading, or switching backend)."""
        from core.search import backend_name, reindex

        name = backend_name(state.settings)
        backend = open_backend(state.settings)
        try:
            count = reindex(state.db, backend)
        finally:
            backend.close()
        from leaksentinel.cli.output import emit_object

        emit_object({"indexed": count}, as_json, human=f"indexed {count} postings ({name} search index)")
