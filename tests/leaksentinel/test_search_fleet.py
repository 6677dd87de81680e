"""Search and console sessions in a fleet: two homes stand for two machines sharing one database.

On PostgreSQL, a posting stored by machine A is found by `search` on machine B (the PostgreSQL search
backend, chosen by default there), `reindex` on B rebuilds the shared index, and a console session
opened on front machine A is accepted by front machine B when both read one ``console_secret_file``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.errors import BadInput
from core.search import SearchQuery, backend_name, open_backend
from core.settings import Settings, load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.api.app import create_app
from leaksentinel.console.session import SESSION_COOKIE

PG = "postgresql+psycopg://ls@db.internal/leaksentinel"


def test_auto_picks_postgres_in_a_fleet_and_tantivy_embedded(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert backend_name(Settings(home=home)) == "tantivy"
    assert backend_name(Settings(home=home, database_url=PG)) == "postgres"
    assert backend_name(Settings(home=home, database_url=PG, redis_url="redis://r")) == "postgres"
    assert backend_name(Settings(home=home, database_url=PG, search_url="http://es:9200")) == "elasticsearch"
    assert backend_name(Settings(home=home, database_url=PG, search_backend="tantivy")) == "tantivy"
    assert backend_name(Settings(home=home, search_backend="Postgres")) == "postgres"
    with pytest.raises(BadInput, match="search_backend"):
        backend_name(Settings(home=home, search_backend="solr"))
    with pytest.raises(BadInput, match="search_url"):
        open_backend(Settings(home=home, search_backend="elasticsearch"))
    env = {"LEAKSENTINEL_HOME": str(home), "LEAKSENTINEL_SEARCH_BACKEND": "tantivy"}
    assert load_settings(environ=env).search_backend == "tantivy"


def test_postgres_backend_refuses_sqlite(tmp_path: Path, database_url: str) -> None:
    if database_url:
        pytest.skip("about the embedded SQLite database")
    with pytest.raises(BadInput, match="PostgreSQL"):
        open_backend(load_settings(search_backend="postgres"))


def _machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    """Switch the in-process CLI to machine `name`: its own home, the fleet's shared keys."""
    from leaksentinel.cli.context import state

    monkeypatch.setenv("LEAKSENTINEL_HOME", str(tmp_path / name))
    monkeypatch.setenv("LEAKSENTINEL_HASH_KEY_FILE", str(tmp_path / "shared" / "hash.key"))
    monkeypatch.setenv("LEAKSENTINEL_SECRETS_KEY_FILE", str(tmp_path / "shared" / "secrets.key"))
    state._settings = None


def test_machine_b_finds_what_machine_a_stored(cli, tmp_path: Path, database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not database_url:
        pytest.skip("a fleet shares a PostgreSQL database (LEAKSENTINEL_TEST_PG_URL)")
    (tmp_path / "shared").mkdir()
    leak = tmp_path / "leak.txt"
    leak.write_text(
        "出售 客户数据 一批\ncontact seller@dark.example\nfull dump file here\n", encoding="utf-8"
    )
    _machine(monkeypatch, tmp_path, "a")
    assert cli("scan", "--store", str(leak)).code == 0

    _machine(monkeypatch, tmp_path, "b")
    for query in ("客户数据", "seller@dark.example", "dark.example", '"dump file"', "售"):
        hits = cli("search", query, "--json").jsonl()
        assert [h["url"] for h in hits] == [str(leak)], query
    assert "[[客户数据]]" in cli("search", "客户数据", "--json").jsonl()[0]["snippet"]
    assert not (tmp_path / "b" / "search").exists()  # nothing kept in B's home

    # What went wrong before: a per-home index on B has never seen A's posting.
    monkeypatch.setenv("LEAKSENTINEL_SEARCH_BACKEND", "tantivy")
    _machine(monkeypatch, tmp_path, "b")
    assert cli("search", "客户数据", "--json").jsonl() == []
    monkeypatch.delenv("LEAKSENTINEL_SEARCH_BACKEND")

    # reindex on B rebuilds the shared index from the database.
    _machine(monkeypatch, tmp_path, "b")
    settings = load_settings()
    backend = open_backend(settings)
    try:
        ids = [h.id for h in backend.search(SearchQuery("客户数据")).hits]
        assert backend.delete(ids) == 1 and backend.count() == 0
    finally:
        backend.close()
    empty = cli("search", "客户数据", "--json")  # as right after upgrading: the index is still empty
    assert empty.jsonl() == [] and "run `leaksentinel reindex`" in empty.err
    assert cli("reindex", "--json").json() == {"indexed": 1}
    assert "reindex" not in cli("search", "nothing-like-this", "--json").err  # no hint once it is filled
    _machine(monkeypatch, tmp_path, "a")
    assert [h["url"] for h in cli("search", "客户数据", "--json").jsonl()] == [str(leak)]


# --------------------------------------------------------------------------- console sessions


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def _front(tmp_path: Path, name: str, db_url: str, secret_file: str) -> TestClient:
    """A front machine: its own home, the fleet's database and keys."""
    settings = load_settings(
        home=tmp_path / name,
        database_url=db_url,
        hash_key_file=str(tmp_path / "shared" / "hash.key"),
        secrets_key_file=str(tmp_path / "shared" / "secrets.key"),
        console_secret_file=secret_file,
    )
    return TestClient(create_app(settings))


def test_console_sessions_work_across_front_machines(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "shared").mkdir()
    db_url = database_url or f"sqlite:///{tmp_path / 'shared' / 'fleet.db'}"
    secret = str(tmp_path / "shared" / "console.secret")
    a = _front(tmp_path, "a", db_url, secret)
    b = _front(tmp_path, "b", db_url, secret)
    alone = _front(tmp_path, "c", db_url, "")  # its home's own secret, as before
    assert (tmp_path / "shared" / "console.secret").stat().st_mode & 0o077 == 0
    key = add_key(open_database(a.app.state.settings), "operator")["api_key"]  # type: ignore[attr-defined]

    page = a.get("/login")
    r = a.post("/login", data={"csrf": _csrf(page.text), "api_key": key}, follow_redirects=False)
    assert r.status_code == 303
    cookie = a.cookies[SESSION_COOKIE]
    csrf = _csrf(a.get("/sources").text)

    b.cookies.set(SESSION_COOKIE, cookie)
    assert b.get("/sources", follow_redirects=False).status_code == 200
    alone.cookies.set(SESSION_COOKIE, cookie)
    assert alone.get("/sources", follow_redirects=False).headers["location"] == "/login"

    # A form from A's page posts to B (same CSRF secret); logging out on B ends the session on A too.
    r = b.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert a.get("/sources", follow_redirects=False).headers["location"] == "/login"


def test_a_short_shared_console_secret_is_refused(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "shared").mkdir()
    short = tmp_path / "shared" / "console.secret"
    short.write_text("hunter2\n")
    db_url = database_url or f"sqlite:///{tmp_path / 'shared' / 'fleet.db'}"
    with pytest.raises(BadInput, match="openssl rand"):
        _front(tmp_path, "a", db_url, str(short))


def test_every_posting_crawled_on_a_is_searchable_on_b(
    cli, tmp_path: Path, database_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The crawl pipeline (a Scrapy process on machine A) writes to the shared index."""
    if not database_url:
        pytest.skip("a fleet shares a PostgreSQL database (LEAKSENTINEL_TEST_PG_URL)")
    from core.search.cjk import tokenize
    from leaksentinel.sim import Underground

    (tmp_path / "shared").mkdir()
    _machine(monkeypatch, tmp_path, "a")
    with Underground(seed=5, n_records=20, n_noise=4) as site:
        assert cli("source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url).code == 0
        crawl = cli("crawl", "pastes", "--json")
        assert crawl.code == 0, crawl.err
        pastes = site.pastes
    assert crawl.json()["new"] == len(pastes) > 3

    _machine(monkeypatch, tmp_path, "b")
    every = cli("search", "NOT zzzznothere", "--limit", "1000", "--json").jsonl()
    assert sorted(h["url"].rsplit("/", 1)[-1].rsplit("=", 1)[-1] for h in every) == sorted(
        p.key for p in pastes
    )
    tokens = [set(tokenize(p.text)) for p in pastes]
    checked = 0
    for paste, mine in zip(pastes, tokens, strict=True):
        others = set().union(*(t for t in tokens if t is not mine))
        unique = sorted(t for t in mine - others if len(t) > 3 and t.isalpha())  # words, not selectors
        if unique:
            hits = cli("search", unique[0], "--json").jsonl()
            assert [h["url"].rsplit("/", 1)[-1].rsplit("=", 1)[-1] for h in hits] == [paste.key], unique[0]
            checked += 1
    assert checked >= 3


def test_a_query_may_start_with_a_minus(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``search -word`` excludes the word (as ``NOT word``); an unknown ``--option`` is still a usage error."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("leaked combo list\n")
    b.write_text("leaked payroll export\n")
    assert cli("scan", "--store", str(a), str(b)).code == 0
    assert [h["url"] for h in cli("search", "-payroll", "--json").jsonl()] == [str(a)]
    assert [h["url"] for h in cli("search", "leaked -combo", "--json").jsonl()] == [str(b)]
    bad = cli("search", "--bogus")
    assert bad.code == 2 and "no such option: --bogus" in bad.err


def test_reindex_leaves_out_purged_postings_and_drops_orphans(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from sqlalchemy import select

    from core.models import Posting
    from core.search import SearchDoc

    kept, purged = tmp_path / "kept.txt", tmp_path / "purged.txt"
    kept.write_text("leaked combo list\n")
    purged.write_text("leaked payroll export\n")
    assert cli("scan", "--store", str(kept), str(purged)).code == 0
    settings = load_settings()
    with open_database(settings).session() as sess:  # what purge leaves of a posting
        sess.scalars(select(Posting).where(Posting.url == str(purged))).one().text = ""
    ghost = SearchDoc(
        7_777_777, "http://gone.example/1", "local", "local", None, None, None, datetime.now(UTC), "ghost"
    )
    backend = open_backend(settings)
    try:
        backend.index([ghost])
    finally:
        backend.close()
    assert cli("reindex", "--json").json() == {"indexed": 1}
    assert [h["url"] for h in cli("search", "leaked", "--json").jsonl()] == [str(kept)] or not database_url
    if database_url:  # the shared index lives on: a rebuild also drops what has no posting behind it
        assert cli("search", "payroll", "--json").jsonl() == []
        assert cli("search", "ghost", "--json").jsonl() == []
