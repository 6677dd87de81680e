"""Sizing benchmark: what one posting costs in disk and CPU, on the embedded default and on PostgreSQL, so
docs/operators.md can say what a deployment ingesting 1 M postings a day needs.

One crawl of the simulated paste site (bench/crawl.py's site and corpus: `--pastes` postings of about
`--kb` KB, every tenth with a planted leak) by the real spider, as its own process, into a fresh home:
  1. embedded: SQLite in the home, tantivy search index, evidence in the home;
  2. fleet: a private database on the PostgreSQL server of ``--pg-url`` (or LEAKSENTINEL_TEST_PG_URL),
     with the PostgreSQL full-text search backend (tsvector + pg_trgm), evidence in the home.
Printed per posting: database bytes (tables, indexes, TOAST), search index bytes, evidence bytes, and the
crawl process' CPU seconds (start-up included), then the projection for 1 M postings a day kept
``retention_days`` (180 by default; alert-held postings are not purged, so the projection is an upper
bound only for text: rows, hashes and evidence of held postings stay).

    python bench/sizing.py                         # 1,000 postings of ~10 KB
    LEAKSENTINEL_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/sizing.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from crawl import crawl, make_pastes  # noqa: E402  (bench/crawl.py: the site's postings and the crawl process)

from leaksentinel.sim import pastebin as sim_pastebin  # noqa: E402

DAY = 1_000_000
RETENTION_DAYS = 180


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _home(work: Path, name: str, config: str) -> Path:
    home = work / name
    home.mkdir(parents=True)
    (home / "config.toml").write_text(config, encoding="utf-8")
    return home


def _add_source(home: Path, url: str, limit: int) -> int:
    from core.db import open_database
    from core.settings import load_settings
    from leaksentinel.actions.sources import add_source

    db = open_database(load_settings(environ={"LEAKSENTINEL_HOME": str(home)}))
    try:
        return int(add_source(db, "pastes", "pastebin", url, every="1h", options={"limit": limit})["id"])
    finally:
        db.engine.dispose()


def _pg_bytes(url: str) -> tuple[int, int]:
    """(database bytes without the search table, search table bytes) of the database at ``url``."""
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        rows = conn.execute(
            "select c.relname, pg_total_relation_size(c.oid) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind in ('r', 'p')"
        ).fetchall()
    search = sum(size for name, size in rows if name.startswith("search_"))
    largest = sorted(rows, key=lambda r: -r[1])[:4]
    print("  PostgreSQL's largest tables:", ", ".join(f"{n} {s / 1e6:.1f} MB" for n, s in largest))
    return sum(size for _, size in rows) - search, search


def _measure(home: Path, source: int, pg_url: str) -> dict[str, float]:
    result = crawl(home, source, bare=False)
    if pg_url:
        db_bytes, search_bytes = _pg_bytes(pg_url)
    else:
        import sqlite3

        with sqlite3.connect(home / "leaksentinel.db") as conn:  # the WAL folded in, as at rest
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db_bytes = sum(p.stat().st_size for p in home.glob("leaksentinel.db*"))
        search_bytes = _tree_bytes(home / "index")
    stored = max(1.0, result["new"])
    return {
        "postings": stored,
        "db": db_bytes / stored,
        "search": search_bytes / stored,
        "evidence": _tree_bytes(home / "evidence") / stored,
        "cpu_ms": 1000 * result["cpu_s"] / stored,
        "rss_mb": result["maxrss_mb"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pastes", type=int, default=1000, help="postings on the simulated site")
    parser.add_argument("--kb", type=float, default=10.0, help="size of a posting in KB")
    parser.add_argument("--pg-url", default=os.environ.get("LEAKSENTINEL_TEST_PG_URL", ""))
    args = parser.parse_args(argv)
    sim_pastebin.MAX_LIMIT = max(sim_pastebin.MAX_LIMIT, args.pastes)
    pastes, _ = make_pastes(args.pastes, int(args.kb * 1000), 5)
    text_bytes = sum(p.size for p in pastes) / len(pastes)
    print(f"site: {len(pastes)} pastes, {text_bytes / 1000:.1f} KB each on average")
    figures: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="ls-bench-sizing-") as tmp,
        sim_pastebin.PastebinSite(pastes) as site,
    ):
        work = Path(tmp)
        home = _home(work, "embedded", "")  # the simulated site is on loopback: allowed without server URLs
        figures["embedded (SQLite, tantivy)"] = _measure(
            home, _add_source(home, site.base_url, len(pastes)), ""
        )
        if args.pg_url:
            import psycopg
            from sqlalchemy.engine import make_url

            name = f"ls_sizing_{uuid.uuid4().hex[:10]}"
            admin = make_url(args.pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
            try:
                home = _home(
                    work,
                    "fleet",
                    f'database_url = "{url}"\nsearch_backend = "postgres"\nallow_private_targets = true\n',
                )
                figures["fleet (PostgreSQL, pg search)"] = _measure(
                    home, _add_source(home, site.base_url, len(pastes)), url
                )
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print("(no --pg-url / LEAKSENTINEL_TEST_PG_URL: PostgreSQL not measured)")
    print()
    print(
        f"{'per posting':32s} {'database':>10s} {'search':>10s} {'evidence':>10s} {'crawl CPU':>10s} {'peak RSS':>9s}"
    )
    for name, f in figures.items():
        print(
            f"{name:32s} {f['db'] / 1000:8.1f} KB {f['search'] / 1000:8.1f} KB {f['evidence'] / 1000:8.1f} KB "
            f"{f['cpu_ms']:7.1f} ms {f['rss_mb']:6.0f} MB   ({f['postings']:.0f} stored)"
        )
    print()
    print(f"1 M postings a day, kept {RETENTION_DAYS} days (text purged after; rows and hashes stay):")
    for name, f in figures.items():
        per_day = (f["db"] + f["search"] + f["evidence"]) * DAY / 1e9
        cores = f["cpu_ms"] / 1000 * DAY / 86_400
        print(
            f"  {name:30s} {per_day:6.1f} GB/day, {per_day * RETENTION_DAYS / 1000:5.2f} TB at steady state, "
            f"{cores:4.2f} cores of crawl CPU on average"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
