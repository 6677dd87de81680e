"""The simulated Pastebin answers like the real scraping API, on loopback."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from leaksentinel.sim import (
    ITEM_NOT_FOUND,
    ITEM_NOT_READY,
    PastebinSite,
    SimPaste,
    Underground,
)

FIELDS = {"scrape_url", "full_url", "date", "key", "size", "expire", "title", "syntax", "user"}


@pytest.fixture
def world() -> Iterator[Underground]:
    with Underground(seed=7) as w:
        yield w


def get(url: str, **params: object) -> httpx.Response:
    return httpx.get(url, params=params, timeout=5)


def test_start_returns_loopback_base_url(world):
    assert world.base_url.startswith("http://127.0.0.1:")
    assert world.site.base_url == world.base_url
    assert get(world.base_url + "/robots.txt").text == "User-agent: *\nAllow: /\n"


def test_listing_shape_and_newest_first(world):
    r = get(world.base_url + "/api_scraping.php", limit=100)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    items = r.json()
    assert len(items) == len(world.pastes)
    for item in items:
        assert set(item) == FIELDS
        assert all(isinstance(v, str) for v in item.values())
        assert item["scrape_url"] == f"{world.base_url}/api_scrape_item.php?i={item['key']}"
        assert item["full_url"] == f"{world.base_url}/{item['key']}"
        assert item["expire"] == "0"
    dates = [int(i["date"]) for i in items]
    assert dates == sorted(dates, reverse=True)
    newest = world.pastes[-1]
    assert items[0]["key"] == newest.key
    assert items[0]["size"] == str(len(newest.text.encode("utf-8")))
    assert items[0]["title"] == newest.title


def test_listing_limit(world):
    url = world.base_url + "/api_scraping.php"
    assert len(get(url, limit=3).json()) == 3
    assert [i["key"] for i in get(url, limit=3).json()] == [p.key for p in reversed(world.pastes[-3:])]
    assert len(get(url, limit=0).json()) == 1
    assert len(get(url, limit="junk").json()) == len(world.pastes)


def test_listing_default_and_max_limit():
    pastes = [
        SimPaste(f"k{i:07d}", f"t{i}", "", "text", 1_700_000_000 + i, f"text {i}", []) for i in range(300)
    ]
    with PastebinSite(pastes) as site:
        url = site.base_url + "/api_scraping.php"
        assert len(get(url).json()) == 50
        assert len(get(url, limit=1000).json()) == 250


def test_listing_lang_filter(world):
    items = get(world.base_url + "/api_scraping.php", limit=100, lang="python").json()
    assert items and all(i["syntax"] == "python" for i in items)


def test_item_and_meta(world):
    paste = next(p for p in world.pastes if "出售" in p.text)
    r = get(world.base_url + "/api_scrape_item.php", i=paste.key)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == paste.text
    meta = get(world.base_url + "/api_scrape_item_meta.php", i=paste.key).json()
    assert len(meta) == 1 and meta[0]["key"] == paste.key and set(meta[0]) == FIELDS


def test_unknown_key_answers_the_sentinel_with_200(world):
    for path in ("/api_scrape_item.php", "/api_scrape_item_meta.php"):
        r = get(world.base_url + path, i="NOPE1234")
        assert r.status_code == 200
        assert r.text == ITEM_NOT_FOUND == "Error, we cannot find this paste."


def test_not_ready(world):
    key = world.pastes[0].key
    world.site.not_ready.add(key)
    r = get(world.base_url + "/api_scrape_item.php", i=key)
    assert r.status_code == 200 and r.text == ITEM_NOT_READY
    world.site.not_ready.discard(key)
    assert get(world.base_url + "/api_scrape_item.php", i=key).text == world.pastes[0].text


def test_html_page(world):
    paste = world.pastes[0]
    r = get(f"{world.base_url}/{paste.key}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<textarea" in r.text
    assert get(world.base_url + "/NOPE1234").status_code == 404


def test_html_page_escapes_text():
    paste = SimPaste("AbCd1234", "<b>x</b>", "", "text", 1, "<script>alert(1)</script>", [])
    with PastebinSite([paste]) as site:
        body = get(site.base_url + "/AbCd1234").text
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_request_log(world):
    world.site.requests.clear()
    get(world.base_url + "/api_scraping.php", limit=2)
    get(world.base_url + "/api_scrape_item.php", i="abc")
    assert world.site.requests == ["/api_scraping.php?limit=2", "/api_scrape_item.php?i=abc"]


def test_request_log_under_concurrency(world):
    world.site.requests.clear()
    with httpx.Client(timeout=5) as client:
        threads = [
            threading.Thread(target=client.get, args=(world.base_url + f"/robots.txt?n={i}",))
            for i in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(world.site.requests) == sorted(f"/robots.txt?n={i}" for i in range(20))


def test_add_while_running(world):
    newest = world.pastes[-1]
    extra = dataclasses.replace(newest, key="NEWpaste", date=newest.date + 60, text="fresh", leaked_keys=[])
    world.site.add(extra)
    items = get(world.base_url + "/api_scraping.php", limit=1).json()
    assert items[0]["key"] == "NEWpaste"
    assert get(world.base_url + "/api_scrape_item.php", i="NEWpaste").text == "fresh"


def test_fail_next_and_whitelist(world):
    world.site.fail_next(1)
    r = get(world.base_url + "/api_scraping.php")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert get(world.base_url + "/api_scraping.php").status_code == 200
    world.site.whitelisted = False
    r = get(world.base_url + "/api_scraping.php")
    assert r.status_code == 200 and r.text.startswith("YOUR IP: 127.0.0.1 DOES NOT HAVE ACCESS.")


def test_stop_releases_the_port():
    site = PastebinSite([])
    started = time.monotonic()
    url = site.start()
    assert time.monotonic() - started < 1
    assert get(url + "/api_scraping.php").json() == []
    site.stop()
    site.stop()
    with pytest.raises(httpx.TransportError):
        get(url + "/api_scraping.php")
    with pytest.raises(RuntimeError):
        _ = site.base_url
