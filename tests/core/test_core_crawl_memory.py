"""What a crawl process loads: modules it never uses cost every crawl subprocess memory and start-up.

Scrapy fetches, so httpx (and, through its command line, click and rich) has no business in a crawl;
core.netguard builds its httpx transport on first use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CRAWL_MODULES = [
    "crawlers.run",
    "crawlers.spiders.pastebin",
    "pipelines.normalize",
    "pipelines.fingerprint",
    "pipelines.detect",
    "pipelines.store",
    "core.search.tantivy_backend",
]
UNUSED_IN_A_CRAWL = ["httpx", "httpcore", "click", "rich"]


def test_a_crawl_process_does_not_import_httpx_or_its_command_line() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {CRAWL_MODULES!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {UNUSED_IN_A_CRAWL!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_guarded_transport_still_refuses_private_targets_once_built() -> None:
    import httpx
    import pytest

    from core.netguard import UnsafeTarget, guarded_transport

    transport = guarded_transport(allow_private=False)
    assert isinstance(transport, httpx.HTTPTransport)
    with httpx.Client(transport=transport, trust_env=False) as client, pytest.raises(UnsafeTarget):
        client.get("http://127.0.0.1:9/")
