"""One suite for every search backend: tantivy always, PostgreSQL full text when LEAKSENTINEL_TEST_PG_URL is
set (CI sets it), Elasticsearch when LEAKSENTINEL_TEST_ES_URL is set.

Each assertion compares the backend's answer with the truth computed from the generated postings by
plain string matching, so "finds exactly the postings holding it" is checked, not just "finds some".
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BadInput
from core.search import SearchDoc, SearchQuery
from core.search.base import SearchBackend
from core.search.tantivy_backend import TantivyBackend

ES_URL = os.environ.get("LEAKSENTINEL_TEST_ES_URL", "")
PG_URL = os.environ.get("LEAKSENTINEL_TEST_PG_URL", "")
BACKENDS = ["tantivy", "postgres", "elasticsearch"]
BASE = datetime(2024, 3, 1, tzinfo=UTC)
SOURCES = [("pastebin", "pastebin"), ("forum", "discourse"), ("channel", "telegram")]
EMAILS = ["alice.w@acme.com", "bob.k@globex.cn", "carol@initech.io", "dave@acme.com"]
IPS = ["10.0.0.1", "10.0.0.12", "192.168.7.9", "2001:db8::42"]
SHAS = [f"{i:x}" * 64 for i in range(10, 14)]  # 'aaaa...', 'bbbb...'
SHAS = [s[:64] for s in SHAS]
PHONES = ["+86 138 0013 8000", "+1 (415) 555-2671"]
ENGLISH = [
    "leak",
    "dump",
    "file",
    "password",
    "database",
    "customer",
    "records",
    "acme",
    "globex",
    "initech",
    "credentials",
    "admin",
    "the",
    "config",
    "backup",
    "server",
    "login",
    "token",
    "secret",
    "export",
    "list",
    "breach",
    "combo",
    "mail",
]
CHINESE = ["客户数据", "客户名单", "数据库备份", "泄露", "用户密码", "内部资料", "客户数量", "财务数据"]


def _text(rng: random.Random, i: int) -> str:
    parts: list[str] = []
    kind = i % 4
    if kind in (0, 2):
        parts.append(" ".join(rng.choice(ENGLISH) for _ in range(rng.randint(5, 25))))
    if kind in (1, 2):
        parts.append("".join(rng.choice(CHINESE) for _ in range(rng.randint(1, 4))))
    if kind == 3:  # mixed in one run
        parts.append(
            f"{rng.choice(ENGLISH)}{rng.choice(CHINESE)} {rng.choice(ENGLISH)} {rng.choice(CHINESE)}"
        )
    if i % 5 == 0:
        parts.append(f"contact {rng.choice(EMAILS)}")
    if i % 6 == 0:
        parts.append(f"host {rng.choice(IPS)} up")
    if i % 7 == 0:
        parts.append(f"sha256 {rng.choice(SHAS)}")
    if i % 11 == 0:
        parts.append(f"tel {rng.choice(PHONES)}")
    rng.shuffle(parts)
    return "\n".join(parts)


def _docs() -> list[SearchDoc]:
    rng = random.Random(20240301)
    out = []
    for i in range(1, 201):
        source, kind = SOURCES[i % 3]
        published = None if i % 7 == 0 else BASE + timedelta(days=i % 10, hours=i % 24)
        out.append(
            SearchDoc(
                id=i,
                url=f"https://example.test/{source}/{i}",
                source=source,
                source_kind=kind,
                title=f"posting {i}",
                author=f"user{i % 13}",
                published=published,
                fetched=BASE + timedelta(days=10, minutes=i),
                text=_text(rng, i),
            )
        )
    return out


DOCS = _docs()
BY_ID = {d.id: d for d in DOCS}


def truth(pred: object) -> set[int]:
    return {d.id for d in DOCS if pred(d)}  # type: ignore[operator]


def has_word(word: str) -> object:
    pattern = re.compile(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", re.IGNORECASE)
    return lambda d: bool(pattern.search(re.sub(r"[\u4e00-\u9fff]", " ", d.text)))


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A private PostgreSQL database migrated to head (search_entries included), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    from core.db import Database

    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"ls_search_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        database = Database(url)
        try:
            database.migrate()
        finally:
            database.dispose()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def open_empty(kind: str, tmp: Path) -> Iterator[tuple[SearchBackend, str]]:
    """An empty backend of this kind, and what another process needs to open the same index."""
    if kind == "tantivy":
        b: SearchBackend = TantivyBackend(tmp / "search")
        yield b, str(tmp / "search")
        b.close()
    elif kind == "postgres":
        if not PG_URL:
            pytest.skip("PostgreSQL search tests need LEAKSENTINEL_TEST_PG_URL")
        from core.search.pg_backend import PostgresBackend

        with pg_database() as url:
            pg = PostgresBackend.from_url(url)
            try:
                yield pg, url
            finally:
                pg.close()
    else:
        if not ES_URL:
            pytest.skip("Elasticsearch tests need LEAKSENTINEL_TEST_ES_URL (e.g. http://127.0.0.1:9200)")
        from core.search.es_backend import ElasticsearchBackend

        index = f"ls-test-{uuid.uuid4().hex[:10]}"
        es_backend = ElasticsearchBackend(ES_URL, index=index)
        try:
            yield es_backend, index
        finally:
            es_backend.es.indices.delete(index=es_backend.index_name, ignore_unavailable=True)
            es_backend.close()


def reopen(kind: str, where: str) -> SearchBackend:
    """The index `open_empty` made, opened again (in another process)."""
    if kind == "tantivy":
        return TantivyBackend(Path(where))
    if kind == "postgres":
        from core.search.pg_backend import PostgresBackend

        return PostgresBackend.from_url(where)
    from core.search.es_backend import ElasticsearchBackend

    return ElasticsearchBackend(ES_URL, index=where)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchBackend]:
    with open_empty(request.param, tmp_path_factory.mktemp("search")) as (b, _):
        assert b.index(DOCS) == len(DOCS)
        yield b


def all_ids(backend: SearchBackend, text: str, page: int = 37, **filters: object) -> list[int]:
    """Every hit, page by page through the cursor."""
    q = SearchQuery(text, limit=page, **filters)  # type: ignore[arg-type]
    ids: list[int] = []
    first = backend.search(q)
    result = first
    while True:
        ids.extend(h.id for h in result.hits)
        assert result.total == first.total
        if result.next_cursor is None:
            break
        q.after = result.next_cursor
        result = backend.search(q)
    assert len(ids) == first.total
    return ids


def exact(backend: SearchBackend, text: str, expected: set[int], **filters: object) -> None:
    assert expected, f"the corpus must hold postings for {text!r}"
    ids = all_ids(backend, text, **filters)
    assert len(ids) == len(set(ids)), "a posting came twice"
    assert set(ids) == expected


def test_word_query(backend: SearchBackend) -> None:
    exact(backend, "password", truth(has_word("password")))
    exact(backend, "PASSWORD", truth(has_word("password")))


def test_phrase_query(backend: SearchBackend) -> None:
    pattern = re.compile(r"\bdump\s+file\b")
    exact(backend, '"dump file"', truth(lambda d: bool(pattern.search(d.text))))


def test_chinese_phrase_finds_exactly_the_holders(backend: SearchBackend) -> None:
    expected = truth(lambda d: "客户数据" in d.text)
    only_parts = truth(lambda d: "客户数据" not in d.text and "客户" in d.text and "数据" in d.text)
    assert only_parts, "the corpus must hold postings with 客户 and 数据 apart"
    exact(backend, "客户数据", expected)


def test_mixed_chinese_english(backend: SearchBackend) -> None:
    exact(backend, "acme 客户数据", truth(lambda d: "客户数据" in d.text and has_word("acme")(d)))  # type: ignore[operator]


def test_boolean_not_and_or(backend: SearchBackend) -> None:
    acme, pw = has_word("acme"), has_word("password")
    expected = truth(lambda d: acme(d) and not pw(d))  # type: ignore[operator]
    exact(backend, "acme -password", expected)
    exact(backend, "acme NOT password", expected)
    globex, initech = has_word("globex"), has_word("initech")
    exact(backend, "globex OR initech", truth(lambda d: globex(d) or initech(d)))  # type: ignore[operator]
    exact(
        backend,
        "(globex OR initech) AND leak",
        truth(lambda d: (globex(d) or initech(d)) and has_word("leak")(d)),
    )  # type: ignore[operator]


@pytest.mark.parametrize("email", EMAILS)
def test_email_selector(backend: SearchBackend, email: str) -> None:
    exact(backend, email.upper(), truth(lambda d: email in d.text))


def test_ip_and_hash_selectors(backend: SearchBackend) -> None:
    ip = re.compile(r"(?<![\d.])10\.0\.0\.1(?![\d])")
    exact(backend, "10.0.0.1", truth(lambda d: bool(ip.search(d.text))))
    exact(backend, "2001:DB8:0::42", truth(lambda d: "2001:db8::42" in d.text))
    exact(backend, SHAS[1].upper(), truth(lambda d: SHAS[1] in d.text))


def test_phone_selector(backend: SearchBackend) -> None:
    exact(backend, "+8613800138000", truth(lambda d: "+86 138 0013 8000" in d.text))
    exact(backend, "+1 415-555-2671", truth(lambda d: "+1 (415) 555-2671" in d.text))


def test_domain_selector_covers_emails(backend: SearchBackend) -> None:
    exact(backend, "acme.com", truth(lambda d: "@acme.com" in d.text))


def test_source_and_date_filters(backend: SearchBackend) -> None:
    pw = has_word("password")
    exact(backend, "password", truth(lambda d: pw(d) and d.source == "forum"), source="forum")  # type: ignore[operator]
    since, until = BASE + timedelta(days=3), BASE + timedelta(days=6)
    exact(
        backend,
        "password",
        truth(lambda d: pw(d) and since <= d.seen <= until),  # type: ignore[operator]
        since=since,
        until=until,
    )
    assert backend.search(SearchQuery("password", source="no-such-source")).total == 0


def test_limit(backend: SearchBackend) -> None:
    page = backend.search(SearchQuery("leak", limit=5))
    assert len(page.hits) == 5
    assert page.total == len(truth(has_word("leak"))) > 5
    assert page.next_cursor


def test_pagination_every_hit_once_in_rank_order(backend: SearchBackend) -> None:
    expected = truth(lambda d: True)
    ids = all_ids(backend, "-zzzznotthere", page=13)
    assert sorted(ids) == sorted(expected)
    scores: list[float] = []
    q = SearchQuery("leak OR password", limit=7)
    while True:
        page = backend.search(q)
        scores.extend(h.score for h in page.hits)
        if not page.next_cursor:
            break
        q.after = page.next_cursor
    assert scores == sorted(scores, reverse=True)


def test_cursor_is_checked(backend: SearchBackend) -> None:
    page = backend.search(SearchQuery("leak", limit=3))
    with pytest.raises(BadInput):
        backend.search(SearchQuery("password", limit=3, after=page.next_cursor))
    with pytest.raises(BadInput):
        backend.search(SearchQuery("leak", after="!!not-a-cursor"))


def test_facets(backend: SearchBackend) -> None:
    pw = has_word("password")
    expected = truth(pw)
    page = backend.search(SearchQuery("password", limit=1))
    by_source: dict[str, int] = {}
    by_day: dict[str, int] = {}
    for i in expected:
        d = BY_ID[i]
        by_source[d.source] = by_source.get(d.source, 0) + 1
        day = d.seen.strftime("%Y-%m-%d")
        by_day[day] = by_day.get(day, 0) + 1
    assert page.facets["source"] == by_source
    assert page.facets["day"] == by_day


def test_snippets_mark_the_match(backend: SearchBackend) -> None:
    for text, needle in (
        ("password", "password"),
        ("客户数据", "客户数据"),
        ("dave@acme.com", "dave@acme.com"),
    ):
        page = backend.search(SearchQuery(text, limit=50))
        assert page.hits
        for hit in page.hits:
            marked = re.findall(r"\[\[(.+?)\]\]", hit.snippet)
            assert marked, hit.snippet
            assert needle in "".join(marked).lower() or all(m.lower() in needle for m in marked)
            assert len(hit.snippet) < 400
            assert hit.url == BY_ID[hit.id].url and hit.source == BY_ID[hit.id].source


def test_hits_carry_the_posting(backend: SearchBackend) -> None:
    hit = backend.search(SearchQuery("sha256", limit=1)).hits[0]
    d = BY_ID[hit.id]
    assert hit.title == d.title and hit.fetched == d.fetched
    assert hit.published == d.published
    assert set(hit.to_json()) == {"id", "url", "source", "title", "published", "fetched", "snippet"}


HOSTILE = [
    '"unbalanced',
    "((",
    "))",
    "AND OR",
    "NOT",
    "-",
    '"',
    '""',
    "(a OR",
    "a AND (b OR (c",
    "title:foo",
    "*",
    "foo*",
    "a~2",
    "[1 TO 5]",
    "\\",
    "\x00",
    "客",
    "\u200b",
    "a" * 300,
    "(" * 500 + "leak",
    "x" * 10_240,
    "".join(random.Random(7).choice('()"-+*:~^[]{}\\/AND OR NOT 客户 \n\t') for _ in range(10_240)),
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_crash(backend: SearchBackend, query: str) -> None:
    try:
        page = backend.search(SearchQuery(query))
    except BadInput:
        return
    assert page.total >= len(page.hits)


def test_only_bad_input_on_bad_arguments(backend: SearchBackend) -> None:
    for bad in (SearchQuery("leak", limit=0), SearchQuery("leak", limit=100_000), SearchQuery("")):
        with pytest.raises(BadInput):
            backend.search(bad)
    with pytest.raises(BadInput):
        backend.search(SearchQuery("leak", since=BASE + timedelta(days=5), until=BASE))


# --------------------------------------------------------------------------- index lifecycle, any query


@pytest.fixture(scope="module", params=BACKENDS)
def small_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchBackend]:
    with open_empty(request.param, tmp_path_factory.mktemp("small")) as (b, _):
        b.index(DOCS[:40])
        yield b


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_arbitrary_queries_never_crash(small_backend: SearchBackend, query: str) -> None:
    with contextlib.suppress(BadInput):
        small_backend.search(SearchQuery(query, limit=3))


@pytest.mark.parametrize("kind", BACKENDS)
def test_reindex_replaces_and_delete_removes(kind: str, tmp_path: Path) -> None:
    with open_empty(kind, tmp_path) as (b, _):
        b.index(DOCS[:10])
        changed = SearchDoc(**{**DOCS[0].__dict__, "text": "replaced zebra"})
        b.index([changed])
        assert b.count() == 10
        assert [h.id for h in b.search(SearchQuery("zebra")).hits] == [DOCS[0].id]
        assert b.search(SearchQuery("password", ids=frozenset({DOCS[0].id}))).total == 0  # old text gone
        assert b.delete([DOCS[0].id, DOCS[1].id]) == 2
        assert b.count() == 8
        assert b.search(SearchQuery("zebra")).total == 0
        assert b.search(SearchQuery("-zzzznotthere", ids=frozenset({DOCS[1].id}))).total == 0


def _index_from_process(kind: str, where: str, start: int) -> None:
    b = reopen(kind, where)
    try:
        for i in range(start, start + 20, 5):
            b.index(
                [
                    SearchDoc(**{**DOCS[0].__dict__, "id": 1000 + j, "text": f"proc{start} word"})
                    for j in range(i, i + 5)
                ]
            )
        # Both writers also replace the same postings, in opposite orders.
        shared = [
            SearchDoc(**{**DOCS[0].__dict__, "id": 5000 + j, "text": f"shared {start}"}) for j in range(30)
        ]
        b.index(shared if start % 200 == 0 else list(reversed(shared)))
    finally:
        b.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_several_processes_index_the_same_index(kind: str, tmp_path: Path) -> None:
    with open_empty(kind, tmp_path) as (b, where):
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=_index_from_process, args=(kind, where, start)) for start in (0, 100, 200)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert b.count() == 90
        assert b.search(SearchQuery("proc100")).total == 20
        assert b.search(SearchQuery("shared")).total == 30


# --------------------------------------------------------------------------- PostgreSQL only


def test_postgres_finds_words_past_the_tsvector_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A posting with more distinct words than a tsvector holds (1 MB; 300 bytes here) is still found by
    every word, through its token string."""
    from core.search import pg_backend

    monkeypatch.setattr(pg_backend, "TSVECTOR_BUDGET", 300)
    words = [f"word{i:03d}" for i in range(200)]
    huge = SearchDoc(**{**DOCS[0].__dict__, "id": 7, "title": "big one", "text": " ".join(words)})
    small = SearchDoc(
        **{**DOCS[1].__dict__, "id": 8, "text": "word199 alone\x00 and a lone \ud800 surrogate"}
    )
    with open_empty("postgres", tmp_path) as (b, _):
        assert b.index([huge, small]) == 2
        assert pg_backend.tsvector_literal([], words)[1] is False
        assert {h.id for h in b.search(SearchQuery("word000")).hits} == {7}
        assert {h.id for h in b.search(SearchQuery("word150")).hits} == {7}
        assert {h.id for h in b.search(SearchQuery("word199")).hits} == {7, 8}
        assert {h.id for h in b.search(SearchQuery('"word150 word151"')).hits} == {7}
        assert {h.id for h in b.search(SearchQuery("word150 -word199")).hits} == set()
        assert {h.id for h in b.search(SearchQuery("surrogate")).hits} == {8}


def test_postgres_search_is_cut_off_after_its_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query that runs past the statement timeout ends with a clear error, not a held connection."""
    from core.errors import OperationalError
    from core.search import pg_backend

    with open_empty("postgres", tmp_path) as (b, _):
        b.index(DOCS)
        monkeypatch.setattr(pg_backend, "STATEMENT_TIMEOUT_MS", 1)
        slow = " OR ".join(f'"{w} {v}"' for w, v in zip(ENGLISH, reversed(ENGLISH), strict=True))
        with pytest.raises(OperationalError, match="narrow the query"):
            for _ in range(20):  # 1 ms: one of these runs over
                b.search(SearchQuery(f"({slow}) -{ENGLISH[0]}"))
        monkeypatch.setattr(pg_backend, "STATEMENT_TIMEOUT_MS", 30_000)
        assert b.search(SearchQuery("password")).total > 0  # the connection is fine afterwards
