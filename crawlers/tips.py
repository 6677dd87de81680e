"""One-off sources for pages reported to the tip line (generic kind, no schedule, hidden from lists)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from core.db import Database
from core.models import AuditLog, Source

__all__ = ["ensure_tip_source"]


def ensure_tip_source(db: Database, url: str, note: str = "") -> str:
    """The name of the tip source for this URL, created on first report."""
    name = "tip-" + hashlib.sha256(url.encode()).hexdigest()[:12]
    with db.session() as sess:
        if sess.scalar(select(Source.id).where(Source.name == name)) is None:
            sess.add(
                Source(
                    name=name,
                    kind="generic",
                    url=url,
                    schedule=None,
                    enabled=False,
                    options={"tip": True, "note": note[:500]},
                    cursor={},
                )
            )
            sess.add(
                AuditLog(
                    actor="tip",
                    action="tip.report",
                    object_type="source",
                    object_id=name,
                    detail={"url": url},
                )
            )
    return name
