"""Fleet search benchmark: the PostgreSQL full-text backend beside the embedded tantivy index (the baseline),
on the same generated postings (`bench/search.py`'s generator and queries) in the same run.

Both figures are the whole ``backend.search`` (parse, top 20 by score, total count, facets, snippets).
Also checked: for every query both backends report the same total (they must answer alike).

    LEAKSENTINEL_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/search_pg.py [-n 10000]

A private database is created from that server (and dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from search import generate, latencies, queries  # bench/search.py
from sqlalchemy.engine import make_url

from core.db import Database
from core.search.base import SearchQuery
from core.search.pg_backend import PostgresBackend
from core.search.tantivy_backend import TantivyBackend


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of postings (default 10,000)")
    parser.add_argument("--pg-url", default=os.environ.get("LEAKSENTINEL_TEST_PG_URL", ""))
    args = parser.parse_args()
    if not args.pg_url:
        print("set LEAKSENTINEL_TEST_PG_URL or pass --pg-url", file=sys.stderr)
        return 2
    n = args.n
    admin = make_url(args.pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"ls_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="ls-bench-pg-"))
    print(f"fleet search bench: {n:,} postings, python {platform.python_version()}, {os.cpu_count()} CPUs")
    try:
        database = Database(url)
        database.migrate()
        database.dispose()
        pg = PostgresBackend.from_url(url)

        t0 = time.perf_counter()
        tv = TantivyBackend(tmp / "tantivy")
        tv.index(generate(n), batch=20_000)
        tv_index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pg.index(generate(n))
        pg_index_s = time.perf_counter() - t0
        with psycopg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute("VACUUM ANALYZE search_entries")
            pg_size = conn.execute("SELECT pg_total_relation_size('search_entries')").fetchone()[0]  # type: ignore[index]
        tv_size = sum(p.stat().st_size for p in (tmp / "tantivy").rglob("*") if p.is_file())

        qs = queries(n)
        disagree = [
            q
            for q in qs
            if tv.search(SearchQuery(q, limit=20)).total != pg.search(SearchQuery(q, limit=20)).total
        ]
        tv_p50, tv_p99 = latencies(lambda q: tv.search(SearchQuery(q, limit=20)), qs)
        pg_p50, pg_p99 = latencies(lambda q: pg.search(SearchQuery(q, limit=20)), qs)
        rows = [
            ("indexing (postings/s)", f"{n / tv_index_s:,.0f}", f"{n / pg_index_s:,.0f}"),
            ("query p50 (ms)", f"{tv_p50:.2f}", f"{pg_p50:.2f}"),
            ("query p99 (ms)", f"{tv_p99:.2f}", f"{pg_p99:.2f}"),
            ("index size (MB)", f"{tv_size / 1e6:,.1f}", f"{pg_size / 1e6:,.1f}"),
        ]
        print()
        print(f"{'':24}{'tantivy':>12}{'postgresql':>14}")
        for label, a, b in rows:
            print(f"{label:24}{a:>12}{b:>14}")
        print(
            f"({len(qs)} queries: words, phrases, CJK, mixed, IPs, emails, NOT; "
            f"same total on both: {len(qs) - len(disagree)}/{len(qs)})"
        )
        for q in disagree[:5]:
            print(f"  totals differ for {q!r}")
        pg.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
