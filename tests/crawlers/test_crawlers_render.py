"""``--render``: pages whose postings exist only after JavaScript are read through Debian's Chromium."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from core.db import open_database
from core.models import Posting
from core.settings import load_settings
from crawlers.job import run_crawl
from leaksentinel.actions.sources import add_source

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="Debian's chromium is not installed (make test installs it as root)",
    ),
]

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>leak board</title></head>
<body><div id="board">loading...</div>
<img src="/big.png"><script src="/app.js"></script></body></html>"""

SCRIPT = b"""
const posts = [
  {id: "p1", text: "selling fresh combo alice@acme-bank.example:hunter2"},
  {id: "p2", text: "\\u5ba2\\u6237\\u6570\\u636e 13800138000"},
];
const board = document.getElementById("board");
board.textContent = "";
for (const p of posts) {
  const div = document.createElement("div");
  div.className = "post"; div.id = p.id; div.textContent = p.text;
  board.appendChild(div);
}
"""


@pytest.fixture
def js_site() -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body, ctype = {
                "/board": (PAGE, "text/html; charset=utf-8"),
                "/app.js": (SCRIPT, "application/javascript"),
            }.get(self.path, (b"", ""))
            if not body:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_render_reads_postings_built_by_javascript(js_site: tuple[str, list[str]]) -> None:
    base, requests = js_site
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "jsboard", "generic", f"{base}/board", render=True, options={"item": "div.post"})
    summary = run_crawl(settings, "jsboard", timeout_s=120)
    assert summary["status"] == "ok", summary
    with db.session() as sess:
        postings = {p.url: p.text for p in sess.scalars(select(Posting))}
    assert postings == {
        f"{base}/board#p1": "selling fresh combo alice@acme-bank.example:hunter2",
        f"{base}/board#p2": "客户数据 13800138000",
    }
    assert "/app.js" in requests  # the browser ran the page's script
    assert "/big.png" not in requests  # images are blocked


def test_without_render_the_same_page_has_no_postings(js_site: tuple[str, list[str]]) -> None:
    base, _ = js_site
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "plain", "generic", f"{base}/board", options={"item": "div.post"})
    assert run_crawl(settings, "plain")["postings"] == 0
