"""`leaksentinel search` over postings stored by scan --store and by crawls, as the contract shapes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.api.app import create_app


@pytest.fixture
def stored(cli, tmp_path: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    files = {
        "a.txt": "出售 客户数据 一批, contact seller@dark.example\n",
        "b.txt": "quarterly report of the board, nothing to see\n",
        "c.txt": "dump from 203.0.113.7: jane@acme.example:pw\n",
    }
    paths = []
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    assert cli("scan", "--store", *map(str, paths)).code == 0
    return paths


def test_search_words_chinese_and_selectors(cli, stored: list[Path]) -> None:  # type: ignore[no-untyped-def]
    hits = cli("search", "客户数据", "--json").jsonl()
    assert [h["url"] for h in hits] == [str(stored[0])]
    assert set(hits[0]) == {"id", "url", "source", "title", "published", "fetched", "snippet"}
    assert hits[0]["source"] == "local"
    assert [h["url"] for h in cli("search", "jane@acme.example", "--json").jsonl()] == [str(stored[2])]
    assert [h["url"] for h in cli("search", "203.0.113.7", "--json").jsonl()] == [str(stored[2])]
    assert [h["url"] for h in cli("search", '"quarterly report"', "--json").jsonl()] == [str(stored[1])]
    assert cli("search", "nothing-matches-this", "--json").jsonl() == []
    assert cli("search", "report", "--source", "nope", "--json").jsonl() == []
    assert cli("search", "((").code == 2
    assert cli("reindex", "--json").json() == {"indexed": 3}
    assert [h["url"] for h in cli("search", "jane", "--kind", "local", "--json").jsonl()] == [str(stored[2])]
    assert cli("search", "jane", "--kind", "phpbb", "--json").jsonl() == []


def test_tenant_relevant_filter_and_finding_kind_facet(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme", "--domain", "acme.example")
    cli("tenant", "add", "other", "--domain", "other.example")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("dump: jane@acme.example\n")
    b.write_text("dump: bob@other.example\n")
    cli("scan", "--store", str(a), str(b))
    assert [h["url"] for h in cli("search", "dump", "--tenant", "acme", "--json").jsonl()] == [str(a)]
    settings = load_settings()
    key = add_key(open_database(settings), "analyst")["api_key"]
    client = TestClient(create_app(settings))
    page = client.get(
        "/api/v1/search", params={"q": "dump", "tenant": "other"}, headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert [h["url"] for h in page["hits"]] == [str(b)] and page["facets"]["finding_kind"] == {"domain": 1}


def test_search_over_http(stored: list[Path]) -> None:
    settings = load_settings()
    key = add_key(open_database(settings), "analyst")["api_key"]
    client = TestClient(create_app(settings))
    page = client.get(
        "/api/v1/search", params={"q": "客户数据"}, headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert page["total"] == 1 and page["facets"]["source"] == {"local": 1}
    assert client.get("/api/v1/search", params={"q": "x"}).status_code == 401
