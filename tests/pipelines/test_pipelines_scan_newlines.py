"""The native scanner splits a two-byte text (any posting with a Chinese character) into the same lines
as Python, wherever its newlines fall in the eight-character blocks it compares at once.

Why: a line number is what a finding shows the analyst and what the record listing jumps to; a newline
missed in one lane of a block would merge two lines and move every later candidate."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection.fastscan import HashedScanner, native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="native scanner not built")

KEY = bytes(range(32))


def _starts(text: str) -> list[int]:
    out, at = [0], text.find("\n")
    while at >= 0:
        out.append(at + 1)
        at = text.find("\n", at + 1)
    return out


def _check(text: str) -> None:
    scan = HashedScanner(KEY, ("CN",)).scan(text)
    assert np.frombuffer(scan.line_starts, dtype=np.uint32).tolist() == _starts(text)
    # every candidate on its own line: the line of each mobile is the one it was written on
    wanted = {n + 1 for n, line in enumerate(text.split("\n")) if "13800138000" in line}
    assert set(scan.pairs[:, 1].tolist()) >= wanted


@pytest.mark.parametrize("offset", range(20))
def test_a_newline_in_every_lane_of_a_block(offset: int) -> None:
    pad = "中" + "a" * offset
    text = pad + "\n13800138000\n" + "文" * 9 + "\n\n" + "b" * (offset % 9) + "\n13800138000 中\n"
    _check(text)
    _check(text.rstrip("\n"))  # no newline at the end: the last line runs to the text's end


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["中", "a", "\n", " 13800138000 ", "\r\n", "文字"]), max_size=80))
def test_random_two_byte_texts_split_as_python_does(parts: list[str]) -> None:
    _check("中" + "".join(parts))


def test_long_lines_between_newlines() -> None:
    rng = random.Random(4)
    text = "\n".join("中" * rng.randrange(0, 40) + "x" * rng.randrange(0, 9) for _ in range(300))
    _check(text)
