"""Indexing stored postings for analysts' search, in batches, outside the database transaction.

Why batched and forgiving: opening the index writer costs ~0.1 s, so postings are indexed ~200 at a
time; and a search index that is down must never lose a posting — the database holds it, and
`leaksentinel reindex` catches the index up.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from core.db import Database
from core.models import Source
from core.posting import PostingDraft
from core.search import SearchDoc, open_backend
from core.settings import Settings

__all__ = ["SearchIndexer"]

log = logging.getLogger(__name__)


class SearchIndexer:
    def __init__(
        self, settings: Settings, db: Database, *, batch: int = 200, max_wait_s: float = 2.0
    ) -> None:
        self.settings = settings
        self.db = db
        self.batch = batch
        self.max_wait_s = max_wait_s
        self._docs: list[SearchDoc] = []
        self._kinds: dict[str, str] = {}
        self._first = 0.0
        self.failed = 0

    def _kind(self, source: str) -> str:
        if source not in self._kinds:
            with self.db.session() as sess:
                self._kinds[source] = sess.scalar(select(Source.kind).where(Source.name == source)) or source
        return self._kinds[source]

    def add(self, posting_id: int, draft: PostingDraft) -> None:
        if not self._docs:
            self._first = time.monotonic()
        self._docs.append(
            SearchDoc(
                id=posting_id,
                url=draft.url,
                source=draft.source,
                source_kind=self._kind(draft.source),
                title=draft.title,
                author=draft.author,
                published=draft.published,
                fetched=draft.fetched,
                text=draft.text,
            )
        )
        if len(self._docs) >= self.batch or time.monotonic() - self._first >= self.max_wait_s:
            self.flush()

    def flush(self) -> None:
        docs, self._docs = self._docs, []
        if not docs:
            return
        try:
            backend = open_backend(self.settings)
            try:
                backend.index(docs)
            finally:
                backend.close()
        except Exception as exc:  # the postings are stored; `leaksentinel reindex` catches up
            self.failed += len(docs)
            log.error("search index unavailable (%s): %d postings not indexed yet", exc, len(docs))
