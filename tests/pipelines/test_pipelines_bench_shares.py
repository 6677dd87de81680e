"""bench/detect.py --shares: each scan-path stage's CPU, measured on a real scan and undone afterwards."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from pipelines.detection.engine import Detector
from pipelines.detection.keywords import KeywordMatcher

_spec = importlib.util.spec_from_file_location(
    "bench_detect", Path(__file__).resolve().parents[2] / "bench" / "detect.py"
)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_detect"] = bench  # dataclasses look their module up
_spec.loader.exec_module(bench)


def test_stage_shares_measure_every_stage_and_restore_the_functions(tmp_path: Path) -> None:
    postings, planted = bench.build_corpus(200_000, 100_000, 17, 4)
    postings = bench.plant_watched(postings, 3)
    home = bench.setup_scan_home(tmp_path, planted)
    files = []
    for i, text in enumerate(postings):
        path = tmp_path / f"p{i}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    before = (KeywordMatcher.find, Detector._lookalikes)
    rows = bench.stage_shares(home, files)
    assert (KeywordMatcher.find, Detector._lookalikes) == before  # wrappers removed
    assert rows[0][0] == "whole scan path" and rows[0][1] > 0
    stages = {label: cpu for label, cpu, _ in rows[1:]}
    assert set(stages) == {label for label, *_ in bench._STAGES}
    for label in ("native candidate scan (_scanner)", "keywords", "documents (winnowing)", "look-alikes"):
        assert stages[label] > 0, label
    assert sum(stages.values()) <= rows[0][1] * 1.05  # the rows do not overlap
