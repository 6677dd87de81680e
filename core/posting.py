"""The item that travels through the crawl pipelines: one posting as read from a source.

Why a dataclass: Scrapy passes dataclass items through its pipelines (itemadapter), and ``scan`` builds
the same object from a local file, so both paths run identical code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.models import utcnow

__all__ = ["PostingDraft"]


@dataclass
class PostingDraft:
    source: str
    url: str
    raw: bytes = b""
    text: str = ""
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    fetched: datetime = field(default_factory=utcnow)
    encoding: str | None = None
    #: The HTTP exchange it was read from (core.fetch_record.from_response); kept beside the evidence.
    fetch: dict[str, Any] | None = None
    # Filled in by the pipelines.
    content_hash: str = ""
    simhash: int | None = None
    findings: list[Any] = field(default_factory=list)
    candidate_hashes: bytes = b""
    #: False when detection kept no candidate hashes (`scan` without `--store`): such a draft must not
    #: be stored, since retro-matching would never find it.
    candidates_kept: bool = True
    posting_id: int | None = None
    is_new: bool = False
    alerts_created: int = 0
    #: Detection stopped at its time limit before the end of the text.
    partial: bool = False
