"""The public tip line: anyone may report a page or a text that holds leaked data.

Why through the same pipeline: a reported page is crawled once by the generic spider and a reported
text is stored as a posting of the `tips` source, so detection, alerts and deliveries are exactly those
of a crawl. Reported URLs are hostile: only http(s), and never into private networks unless allowed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from core.db import open_database
from core.errors import BadInput
from core.netguard import check_url
from core.posting import PostingDraft
from core.settings import Settings
from crawlers.job import run_crawl
from crawlers.tips import ensure_tip_source
from pipelines.ingest import Ingest
from pipelines.store import TIPS_SOURCE

__all__ = ["MAX_TIP_BYTES", "report_text", "report_url"]

MAX_TIP_BYTES = 5_000_000


def report_url(settings: Settings, url: str, *, note: str | None = None) -> dict[str, Any]:
    """Crawl a reported page once, now; returns the crawl summary."""
    target = check_url(url, allow_private=settings.private_targets_allowed)
    name = ensure_tip_source(open_database(settings), target, note or "")
    summary = run_crawl(settings, name)
    summary["reported"] = target
    return summary


def report_text(settings: Settings, text: str, *, note: str | None = None) -> dict[str, Any]:
    """Store a reported text as a posting of the `tips` source and raise alerts as a crawl would."""
    raw = text.encode("utf-8")
    if not raw.strip():
        raise BadInput("the reported text is empty")
    if len(raw) > MAX_TIP_BYTES:
        raise BadInput(f"the reported text is larger than {MAX_TIP_BYTES // 1_000_000} MB")
    digest = hashlib.sha256(raw).hexdigest()
    draft = PostingDraft(
        source=TIPS_SOURCE, url=f"tip:{digest[:16]}", raw=raw, title=(note or "reported text")[:200]
    )
    with Ingest(settings, open_database(settings)) as ingest:
        ingest.detect(draft)
        result = ingest.store(draft)
    return {
        "posting": result.posting_id,
        "url": draft.url,
        "new": result.new,
        "findings": len(draft.findings),
        "alerts": result.alerts,
    }
