"""A crawl detects its postings in batches (pipelines.detect.DetectPipeline, pipelines.batching): by count,
by time, at the close; a posting whose detection fails fails alone; what a batch finds is what one
posting at a time finds."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from core.posting import PostingDraft
from core.settings import Settings, load_settings
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_keyword_watch
from pipelines.batching import ItemBatches
from pipelines.detect import DetectPipeline


def _draft(i: int, text: str | None = None) -> PostingDraft:
    body = text or f"posting {i}\n" + f"line {i} with the acme-secret-plan inside\n" * 3
    return PostingDraft(source="pastes", url=f"http://127.0.0.1:1/raw/{i}", raw=body.encode(), text=body)


class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


class _Crawler:
    def __init__(self) -> None:
        self.stats = _Stats()


def _pipeline(tmp_path: Path, **batching: Any) -> tuple[DetectPipeline, list[int], Settings]:
    settings = dataclasses.replace(load_settings(), **batching)
    from core.db import open_database

    db = open_database(settings)
    tenant = add_tenant(db, "acme", ["acme.example"], ["CN"])["id"]
    add_keyword_watch(db, tenant, "acme-secret-plan")
    pipeline = DetectPipeline(settings, _Crawler())
    sizes: list[int] = []
    real = pipeline.detect_items

    def recording(items: list[PostingDraft]) -> list[Any]:
        sizes.append(len(items))
        return real(items)

    pipeline._batches.handle = recording
    return pipeline, sizes, settings


async def _through(pipeline: DetectPipeline, drafts: list[PostingDraft]) -> list[Any]:
    everything = asyncio.gather(*(pipeline.process_item(d) for d in drafts), return_exceptions=True)
    return await asyncio.wait_for(everything, 20)


def test_postings_are_detected_in_batches_and_find_what_one_at_a_time_finds(
    tmp_path: Path, database_url: str
) -> None:
    pipeline, sizes, _ = _pipeline(tmp_path, detect_batch=3, detect_batch_wait_s=0.2)
    drafts = [_draft(i) for i in range(5)]
    started = time.monotonic()
    out = asyncio.run(_through(pipeline, drafts))
    assert sizes == [3, 2]
    assert time.monotonic() - started >= 0.2  # the last two waited for the time limit
    assert out == drafts
    alone = [pipeline.detect_item(_draft(i)) for i in range(5)]
    assert all(d.findings for d in drafts)
    assert [[f.kind for f in d.findings] for d in drafts] == [[f.kind for f in d.findings] for d in alone]
    assert [d.candidate_hashes for d in drafts] == [d.candidate_hashes for d in alone]


def test_a_posting_whose_detection_fails_fails_alone(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, sizes, _ = _pipeline(tmp_path, detect_batch=3, detect_batch_wait_s=30.0)
    real = pipeline.detector.detect

    def detect(text: str, deadline: Any = None, **options: Any) -> Any:
        if "posting 1\n" in text:
            raise ValueError("a detector bug")
        return real(text, deadline, **options)

    monkeypatch.setattr(pipeline.detector, "detect", detect)
    out = asyncio.run(_through(pipeline, [_draft(0), _draft(1), _draft(2)]))
    assert sizes == [3]
    assert isinstance(out[1], ValueError)
    assert isinstance(out[0], PostingDraft) and out[0].findings
    assert isinstance(out[2], PostingDraft) and out[2].findings


def test_closing_detects_what_still_waits_and_partial_scans_are_counted(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, sizes, _ = _pipeline(tmp_path, detect_batch=10, detect_batch_wait_s=60.0)
    real = pipeline.detector.detect

    def partial(text: str, deadline: Any = None, **options: Any) -> Any:
        result = real(text, deadline, **options)
        result.partial = True
        return result

    monkeypatch.setattr(pipeline.detector, "detect", partial)

    async def park_then_close() -> Any:
        task = asyncio.ensure_future(pipeline.process_item(_draft(1)))
        await asyncio.sleep(0.05)
        assert not task.done()
        pipeline.close_spider()
        return await task

    detected = asyncio.run(park_then_close())
    assert sizes == [1] and detected.findings and detected.partial
    assert pipeline.crawler.stats.values == {"leaksentinel/partial_scans": 1}


def test_anything_but_a_posting_passes_untouched(tmp_path: Path, database_url: str) -> None:
    pipeline, sizes, _ = _pipeline(tmp_path)
    other = {"not": "a posting"}
    assert asyncio.run(pipeline.process_item(other)) is other
    assert sizes == []


def test_a_batch_whose_handler_breaks_fails_each_item_instead_of_hanging() -> None:
    def broken(items: list[int]) -> list[Any]:
        raise RuntimeError("handler down")

    def short(items: list[int]) -> list[Any]:
        return items[:-1]  # one outcome missing: never a future left waiting

    async def run(batches: ItemBatches[int]) -> list[Any]:
        return await asyncio.wait_for(
            asyncio.gather(*(batches.submit(i) for i in range(3)), return_exceptions=True), 10
        )

    out = asyncio.run(run(ItemBatches(broken, size=2, wait_s=0.05)))
    assert [type(o) for o in out] == [RuntimeError] * 3
    out = asyncio.run(run(ItemBatches(short, size=3, wait_s=0.05)))
    assert [type(o) for o in out] == [RuntimeError] * 3 and "2 outcomes for a batch of 3" in str(out[0])


def test_a_batch_is_cut_by_its_bytes() -> None:
    sizes: list[int] = []

    def handle(items: list[str]) -> list[str]:
        sizes.append(len(items))
        return items

    async def run() -> list[Any]:
        batches: ItemBatches[str] = ItemBatches(handle, size=100, wait_s=30.0, max_bytes=10)
        return await asyncio.wait_for(asyncio.gather(*(batches.submit(s, len(s)) for s in ["abcd"] * 3)), 10)

    assert asyncio.run(run()) == ["abcd"] * 3 and sizes == [3]
