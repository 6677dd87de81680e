"""Catch the candidate and search indexes up with postings a crawl stored but never indexed.

Why: a crawl writes its candidate segment and search batch when it closes; one that is killed
(kill -9, a timeout, a machine lost) has already committed its postings, alerts and outbox, so the
next run sees those postings as known and would never index them, and retro-match (which finds
postings through the candidate index) would miss them for good. The job rows say which runs did not
close cleanly (no ``indexed`` in their stats); the postings their source stored while they ran are
indexed again by the next run of that source. Adding a posting twice is harmless (the index is a set).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from core.db import Database
from core.models import CrawlJob, Posting, Source
from core.posting import PostingDraft

__all__ = ["INDEXED_STAT", "MAX_JOBS", "mark_indexed", "unindexed_postings"]

log = logging.getLogger(__name__)

#: The crawl stat a run sets once its indexes are written (crawlers.run puts it in the job's stats).
INDEXED_STAT = "leaksentinel/indexed"
#: At most this many unclean runs are caught up at a time (the newest first).
MAX_JOBS = 50
#: Clock slack around a run's start and end.
_SLACK = timedelta(minutes=2)
_UNCLEAN = ("interrupted", "failed")


def unindexed_postings(db: Database, source_name: str, batch: int = 500) -> tuple[list[int], list[Any]]:
    """Job ids of this source's runs that ended without indexing, and the postings they stored
    (as ``(posting_id, candidate_hashes, PostingDraft)`` for the indexes)."""

    def find(sess: Any) -> tuple[list[int], list[Any]]:
        source = sess.scalar(select(Source).where(Source.name == source_name))
        if source is None:
            return [], []
        jobs = [
            j
            for j in sess.scalars(
                select(CrawlJob)
                .where(CrawlJob.source_id == source.id, CrawlJob.status.in_(_UNCLEAN))
                .order_by(CrawlJob.id.desc())
                .limit(MAX_JOBS * 4)
            )
            if not (j.stats or {}).get("indexed")
        ][:MAX_JOBS]
        seen: set[int] = set()
        rows: list[Any] = []
        for job in jobs:
            query = select(Posting).where(
                Posting.source_id == source.id, Posting.fetched >= job.started_at - _SLACK
            )
            if job.finished_at is not None:
                query = query.where(Posting.fetched <= job.finished_at + _SLACK)
            for posting in sess.scalars(query.execution_options(yield_per=batch)):
                if posting.id in seen:
                    continue
                seen.add(posting.id)
                draft = PostingDraft(
                    source=source_name,
                    url=posting.url,
                    text=posting.text or "",
                    title=posting.title,
                    author=posting.author,
                    published=posting.published,
                    fetched=posting.fetched,
                )
                rows.append((posting.id, posting.candidate_hashes, draft))
        return [j.id for j in jobs], rows

    return db.run(find, what=f"finding postings of {source_name} left unindexed")


def mark_indexed(db: Database, job_ids: list[int]) -> None:
    """Record that these runs' postings are indexed now (they are not looked at again)."""
    if not job_ids:
        return

    def mark(sess: Any) -> None:
        for job in sess.scalars(select(CrawlJob).where(CrawlJob.id.in_(job_ids))):
            job.stats = {**(job.stats or {}), "indexed": True}

    db.run(mark, what="marking caught-up runs")
