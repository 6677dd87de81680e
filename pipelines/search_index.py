"""Indexing stored postings for analysts' search, in batches, outside the database transaction.

Why batched and forgiving: every batch opens the index writer, commits and lets tantivy merge its
segments (a few milliseconds per posting for a batch of 30, a quarter of that for 200), so postings are
indexed `batch` at a time, or when the oldest has waited `max_wait_s`, or when the batch holds
`max_bytes` of text; and a search index that is down must never lose a posting — the database holds it,
and `leaksentinel reindex` catches the index up (a crawl killed before its last batch is caught up by
the next run of its source: pipelines.recovery).

Why batches grow: each commit writes one segment, and tantivy merges them once eight pile up, so a
crawl of 2,000 postings in batches of 200 paid for ten commits and a merge of 1,600 postings (a third
of its indexing CPU). The first batch of a run is `batch` postings (the first postings are searchable
early); each later one may hold twice its predecessor's, up to `max_batch`; `max_wait_s` still bounds
how long a stored posting waits to be searchable.

Memory: a commit allocates and frees tens of MB (tantivy's arena, segment buffers, the batch's token
strings), which glibc keeps in the process unless asked; `flush` hands the free pages back to the OS, so a
long crawl does not hold the peak of its largest commit for its whole life.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

from sqlalchemy import select

from core.db import Database
from core.models import Source
from core.posting import PostingDraft
from core.search import SearchDoc, open_backend
from core.settings import Settings

__all__ = ["SearchIndexer", "release_free_memory"]

log = logging.getLogger(__name__)

#: Default batch: postings of the first commit (later ones double up to `MAX_BATCH`), the longest a stored
#: posting waits to be searchable, and the text a batch may hold (a crawl of 50 MB dumps commits every
#: few postings rather than hold them all).
BATCH = 200
MAX_BATCH = 1000
MAX_WAIT_S = 10.0
MAX_BYTES = 32_000_000


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None elsewhere (musl, macOS: their allocators differ)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Return the heap's free pages to the OS (glibc only); True if it could be asked."""
    if _TRIM is None:
        return False
    _TRIM()
    return True


class SearchIndexer:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        batch: int = BATCH,
        max_wait_s: float = MAX_WAIT_S,
        max_bytes: int = MAX_BYTES,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.settings = settings
        self.db = db
        self.batch = batch
        self.max_batch = max(batch, max_batch)
        #: Postings that cut the current batch: `batch`, doubled after each commit up to `max_batch`.
        self.limit = batch
        self.max_wait_s = max_wait_s
        self.max_bytes = max_bytes
        self._docs: list[SearchDoc] = []
        self._bytes = 0
        self._kinds: dict[str, str] = {}
        self._first = 0.0
        self.failed = 0
        #: Batches written (each one writer: open, add, commit); tests read it.
        self.commits = 0

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
        self._bytes += len(draft.text)
        if (
            len(self._docs) >= self.limit
            or self._bytes >= self.max_bytes
            or time.monotonic() - self._first >= self.max_wait_s
        ):
            self.flush()

    def flush(self) -> None:
        docs, self._docs, self._bytes = self._docs, [], 0
        if not docs:
            return
        try:
            backend = open_backend(self.settings)
            try:
                backend.index(docs)
                self.commits += 1
                self.limit = min(self.limit * 2, self.max_batch)
            finally:
                backend.close()
        except Exception as exc:  # the postings are stored; `leaksentinel reindex` catches up
            self.failed += len(docs)
            log.error("search index unavailable (%s): %d postings not indexed yet", exc, len(docs))
        finally:
            del docs
            release_free_memory()
