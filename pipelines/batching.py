"""Items that wait to be handled together: the batches of the detect and store pipelines.

Why: a crawl hands over one item at a time, interleaved with Scrapy's own work. Storing a batch takes one
transaction and one flush of the evidence; detecting a batch keeps the detector's tables and code in the
CPU's caches from one posting to the next (a posting detected right after another costs ~15% less CPU in
a crawl than one detected between two of Scrapy's responses). An item waits until `size` items (or
`max_bytes` of them) are waiting, or `wait_s` has passed since the first, and each item leaves with its
own outcome: the item, or the exception that replaces it. Scrapy keeps fetching meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["ItemBatches"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ItemBatches(Generic[T]):
    """Waiting items, handed to `handle` as one list; `handle` returns one outcome per item, in order (an
    Exception fails its item alone). An exception out of `handle` fails every item of the batch: a batch
    run by its timer has no caller to raise to, and a crawl must not hang on it."""

    def __init__(
        self,
        handle: Callable[[list[T]], Sequence[Any]],
        *,
        size: int,
        wait_s: float,
        max_bytes: int = 0,
        what: str = "items",
    ) -> None:
        self.handle = handle
        self.size = max(1, size)
        self.wait_s = wait_s
        self.max_bytes = max_bytes
        self.what = what
        self._pending: list[tuple[T, asyncio.Future[Any]]] = []
        self._bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, item: T, size_bytes: int = 0) -> Any:
        """The item's outcome, once its batch is handled (raised, if it is an exception)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._pending.append((item, done))
        self._bytes += size_bytes
        if len(self._pending) >= self.size or (self.max_bytes and self._bytes >= self.max_bytes):
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.wait_s, self.flush)
        return await done

    def flush(self) -> None:
        """Handle the waiting items now, and let each go on with its outcome."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._bytes = self._pending, [], 0
        if not pending:
            return
        try:
            outcomes = list(self.handle([item for item, _ in pending]))
            if len(outcomes) != len(pending):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(pending)} {self.what}")
        except Exception as exc:
            log.exception("a batch of %d %s failed", len(pending), self.what)
            outcomes = [exc] * len(pending)
        for (_, done), outcome in zip(pending, outcomes, strict=True):
            if done.done():  # cancelled: its crawl is being torn down
                continue
            if isinstance(outcome, Exception):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)
