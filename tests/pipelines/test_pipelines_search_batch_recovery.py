"""A crawl killed before its search batch was written loses no posting from the search index.

Postings wait in the batch (the first of a run up to 200 postings, later ones growing to 1,000; at most
10 s) before they are searchable; a process killed then has committed them to the database only. The next run of the source indexes what the unclean run
stored (pipelines.recovery), so every posting ends up searchable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from core.db import open_database
from core.models import CrawlJob, Source, utcnow
from core.posting import PostingDraft
from core.search import SearchQuery, open_backend
from core.settings import Settings
from pipelines.store import StorePipeline


def _draft(i: int) -> PostingDraft:
    return PostingDraft(
        source="pastes",
        url=f"https://paste.example/{i}",
        text=f"posting {i} seller{i}@globex.cn 客户数据",
        title=f"paste {i}",
        fetched=utcnow(),
    )


def test_postings_of_a_batch_lost_with_its_process_are_indexed_by_the_next_run(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    db = open_database(settings)
    with db.session() as sess:
        source = Source(name="pastes", kind="pastebin", url="https://paste.example", schedule=None)
        sess.add(source)
        sess.flush()
        sess.add(CrawlJob(source_id=source.id, started_at=utcnow() - timedelta(seconds=5), status="running"))

    killed = StorePipeline(settings)
    for i in range(1, 251):
        killed.store_items([_draft(i)])
    # killed here: 200 postings were written as one batch, the last 50 only to the database
    assert killed.search.commits == 1
    assert open_backend(settings).count() == 200
    assert open_backend(settings).search(SearchQuery("seller230@globex.cn")).total == 0
    with db.session() as sess:  # what crawlers.job records for a run whose process is gone
        for job in sess.query(CrawlJob):
            job.status, job.finished_at = "interrupted", utcnow()

    rerun = StorePipeline(settings)
    rerun.open_spider(SimpleNamespace(source_name="pastes"))
    backend = open_backend(settings)
    assert backend.count() == 250
    assert backend.search(SearchQuery("seller230@globex.cn")).total == 1
    assert backend.search(SearchQuery("客户数据")).total == 250
