"""Postings as analysts browse them: the newest, one posting with its alerts and reposts, and a plain
substring search for deployments without the search index.

Why reposts come from two places: the near-duplicate index (same text, or a SimHash within 3 bits) finds
copies whatever tenant they concern, and an alert's sightings record where the same leak was seen again
(also when the text differs more, e.g. a sample reposted from a larger dump); both are "the same leak".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from core.db import Database
from core.errors import NotFound
from core.models import Alert, Posting, Sighting, Source, Tenant

__all__ = ["MAX_REPOSTS", "posting_detail", "recent_postings", "substring_search"]

MAX_REPOSTS = 50
MAX_ALERTS = 100


def recent_postings(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The newest stored postings (metadata only, never their text), newest first."""
    limit = max(1, min(int(limit), 200))
    with db.read_session() as sess:
        rows = sess.execute(
            select(
                Posting.id,
                Posting.title,
                Posting.url,
                Posting.published,
                Posting.fetched,
                Posting.size,
                Source.name,
            )
            .join(Source, Source.id == Posting.source_id)
            .order_by(Posting.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": pid,
                "title": title,
                "url": url,
                "when": published or fetched,
                "size": size,
                "source": source,
            }
            for pid, title, url, published, fetched, size, source in rows
        ]


def posting_detail(db: Database, posting_id: int, *, tenant_id: int | None = None) -> dict[str, Any]:
    """The posting row (as given to ``view``) plus its alerts and its reposts.

    ``tenant_id``: when set, only that tenant's alerts are listed (a tenant never learns of another's);
    None lists every tenant's (operators, analysts). NotFound for an unknown posting."""
    from pipelines.neardup import near_duplicates

    with db.read_session() as sess:
        row = sess.get(Posting, posting_id)
        if row is None:
            raise NotFound(f"unknown posting: {posting_id}")
        source = sess.get(Source, row.source_id)
        sighted = select(Sighting.alert_id).where(Sighting.posting_id == row.id)
        query = (
            select(Alert, Tenant.name)
            .join(Tenant, Tenant.id == Alert.tenant_id)
            .where(or_(Alert.posting_id == row.id, Alert.id.in_(sighted)))
            .order_by(Alert.id)
            .limit(MAX_ALERTS)
        )
        if tenant_id is not None:
            query = query.where(Alert.tenant_id == tenant_id)
        alerts = [
            {
                "id": a.id,
                "tenant": tenant,
                "severity": a.severity,
                "status": a.status,
                "kinds": list(a.kinds or []),
                "records": a.records,
                "first": a.posting_id == row.id,
            }
            for a, tenant in sess.execute(query).all()
        ]
        why: dict[int, str] = {}
        for pid in near_duplicates(sess, row.simhash, row.content_hash, exclude=row.id)[: MAX_REPOSTS * 4]:
            why[pid] = "near-duplicate"
        alert_ids = [a["id"] for a in alerts]
        if alert_ids:
            for pid, alert_id in sess.execute(
                select(Sighting.posting_id, Sighting.alert_id)
                .where(Sighting.alert_id.in_(alert_ids))
                .limit(1000)
            ).all():
                if pid != row.id:
                    why.setdefault(pid, f"sighting of alert {alert_id}")
            for pid, alert_id in sess.execute(
                select(Alert.posting_id, Alert.id).where(Alert.id.in_(alert_ids))
            ).all():
                if pid != row.id:
                    why.setdefault(pid, f"first posting of alert {alert_id}")
        reposts = []
        if why:
            ids = sorted(why)[: MAX_REPOSTS * 4]
            rows = sess.execute(
                select(
                    Posting.id, Posting.url, Posting.title, Posting.fetched, Posting.content_hash, Source.name
                )
                .join(Source, Source.id == Posting.source_id)
                .where(Posting.id.in_(ids))
                .order_by(Posting.fetched, Posting.id)
                .limit(MAX_REPOSTS)
            ).all()
            for pid, url, title, fetched, content_hash, name in rows:
                exact = content_hash == row.content_hash
                reposts.append(
                    {
                        "id": pid,
                        "url": url,
                        "title": title,
                        "fetched": fetched,
                        "source": name,
                        "why": "same text" if exact else why[pid],
                    }
                )
        return {
            "row": row,
            "source": source.name if source else "",
            "alerts": alerts,
            "reposts": reposts,
            "more_reposts": max(0, len(why) - len(reposts)),
        }


def substring_search(db: Database, text: str, source: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Without `core.search`: a bounded substring search over posting text (newest first), with the same
    result shape as the index (snippets marked ``[[...]]``, facets by source and day over the hits)."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with db.read_session() as sess:
        query = (
            select(Posting, Source.name)
            .join(Source, Source.id == Posting.source_id)
            .where(Posting.text.like(pattern, escape="\\"))
            .order_by(Posting.id.desc())
            .limit(max(1, min(int(limit), 200)))
        )
        if source:
            query = query.where(Source.name == source)
        hits = []
        facets: dict[str, dict[str, int]] = {"source": {}, "day": {}}
        for p, name in sess.execute(query).all():
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
