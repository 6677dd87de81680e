"""Search benchmark: indexing postings/s and query latency p50/p99 for the embedded tantivy backend,
beside SQLite FTS5 (Python's sqlite3) on the same generated postings in the same run.

Why FTS5 as the baseline: it is the obvious embedded full-text index. Both sides get the same
analysis (`core.search.cjk` tokens, CJK bigrams; selectors in an exact-term table for FTS5), timed
inside the loop, so the ratio compares the engines, not the tokenisers. The tantivy figure is the
whole `TantivyBackend.search` (parse, top 20 by score, total count, facets, snippets); the FTS5
figure is a top-20 ``ORDER BY rank`` with ``snippet()`` only, so it flatters the baseline.

    python bench/search.py            # 1,000,000 postings (about 10 minutes, a few GB in a temp dir)
    python bench/search.py --quick    # 50,000 postings
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.search.base import SearchDoc, SearchQuery, SelectorLeaf, TokensLeaf, extract_selectors, parse_query
from core.search.cjk import token_string
from core.search.tantivy_backend import TantivyBackend

BASE = datetime(2024, 1, 1, tzinfo=UTC)
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "it",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
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
    "account",
    "user",
    "data",
    "private",
    "internal",
    "access",
    "key",
    "cloud",
    "bucket",
    "shell",
    "root",
    "proxy",
    "invoice",
    "payroll",
    "hr",
    "finance",
    "contract",
    "employee",
    "vpn",
    "ssh",
    "api",
    "github",
    "gitlab",
    "jira",
    "confluence",
    "slack",
    "wiki",
    "report",
    "quarterly",
]
CHINESE = [
    "客户数据",
    "用户密码",
    "内部资料",
    "数据库备份",
    "财务报表",
    "员工信息",
    "身份证号",
    "手机号码",
    "银行卡号",
    "泄露",
    "出售",
    "完整",
    "最新",
    "公司",
    "系统",
    "后台",
    "管理员",
    "账号",
    "邮箱",
    "地址",
    "订单",
    "记录",
    "合同",
    "工资",
    "名单",
    "客户名单",
    "财务数据",
]
SOURCES = ["pastebin", "forum-a", "forum-b", "channel", "gists", "rss"]


def generate(n: int, seed: int = 7) -> Iterator[SearchDoc]:
    rng = random.Random(seed)
    for i in range(1, n + 1):
        kind = rng.random()
        parts: list[str] = []
        if kind < 0.75:
            parts.append(" ".join(rng.choices(WORDS, k=rng.randint(30, 80))))
        if kind > 0.55:
            parts.append("".join(rng.choices(CHINESE, k=rng.randint(10, 40))))
        if rng.random() < 0.3:
            parts.append(f"{rng.choice(WORDS)}{i % 997}@{rng.choice(['acme.com', 'globex.cn', 'mail.ru'])}")
        if rng.random() < 0.2:
            parts.append(f"10.{i % 251}.{i % 13}.{i % 7 + 1}")
        if rng.random() < 0.1:
            parts.append(f"{i * 2654435761 % (1 << 64):016x}" * 4)
        published = BASE + timedelta(minutes=i) if i % 5 else None
        yield SearchDoc(
            id=i,
            url=f"https://example.test/{i}",
            source=SOURCES[i % len(SOURCES)],
            source_kind="bench",
            title=f"paste {i} {rng.choice(WORDS)}",
            author=None,
            published=published,
            fetched=BASE + timedelta(minutes=i, seconds=30),
            text="\n".join(parts),
        )


def queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(200):
        r = i % 8
        if r == 0:
            out.append(rng.choice(WORDS))
        elif r == 1:
            out.append(f"{rng.choice(WORDS)} {rng.choice(WORDS)}")
        elif r == 2:
            out.append(f'"{rng.choice(WORDS)} {rng.choice(WORDS)}"')
        elif r == 3:
            out.append(rng.choice(CHINESE))
        elif r == 4:
            out.append(f"{rng.choice(WORDS)} {rng.choice(CHINESE)}")
        elif r == 5:
            k = rng.randint(1, n)
            out.append(f"10.{k % 251}.{k % 13}.{k % 7 + 1}")
        elif r == 6:
            out.append(f"{rng.choice(WORDS)}{rng.randint(1, n) % 997}@acme.com")
        else:
            out.append(f"{rng.choice(WORDS)} -{rng.choice(WORDS)}")
    return out


# --------------------------------------------------------------------------- FTS5 baseline


def fts5_index(path: Path, docs: Iterator[SearchDoc]) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, text UNINDEXED, tokenize='unicode61')")
    db.execute("CREATE TABLE sel (term TEXT, doc INTEGER)")
    count = 0
    rows: list[tuple[int, str, str, str]] = []
    sels: list[tuple[str, int]] = []
    for d in docs:
        rows.append((d.id, token_string(d.title or ""), token_string(d.text), d.text))
        sels.extend((s, d.id) for s in extract_selectors(f"{d.title}\n{d.text}"))
        count += 1
        if len(rows) >= 10_000:
            db.executemany("INSERT INTO docs(rowid, title, body, text) VALUES (?,?,?,?)", rows)
            db.executemany("INSERT INTO sel VALUES (?,?)", sels)
            rows, sels = [], []
    db.executemany("INSERT INTO docs(rowid, title, body, text) VALUES (?,?,?,?)", rows)
    db.executemany("INSERT INTO sel VALUES (?,?)", sels)
    db.execute("CREATE INDEX sel_term ON sel(term)")
    db.commit()
    db.close()
    return count


def fts5_searcher(path: Path) -> Callable[[str], int]:
    db = sqlite3.connect(path)

    def run(text: str) -> int:
        node = parse_query(text)
        if isinstance(node, SelectorLeaf):
            marks = ",".join("?" * len(node.terms))
            return len(
                db.execute(f"SELECT doc FROM sel WHERE term IN ({marks}) LIMIT 20", node.terms).fetchall()
            )
        leaves = getattr(node, "children", (node,))
        parts = []
        for leaf in leaves:
            inner = getattr(leaf, "child", None)
            target = inner if inner is not None else leaf
            assert isinstance(target, TokensLeaf)
            phrase = '"' + " ".join(target.tokens) + '"'
            parts.append(f"NOT {phrase}" if inner is not None else phrase)
        match = " ".join(parts) if parts[0][:4] != "NOT " else "x " + " ".join(parts)
        sql = "SELECT rowid, snippet(docs, 1, '[[', ']]', '…', 20) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 20"
        return len(db.execute(sql, (match,)).fetchall())

    return run


# --------------------------------------------------------------------------- measuring


def latencies(run: Callable[[str], object], qs: list[str]) -> tuple[float, float]:
    for q in qs[:20]:  # warm caches
        run(q)
    times = []
    for q in qs:
        t = time.perf_counter()
        run(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def dir_size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 postings instead of 1,000,000")
    parser.add_argument("-n", type=int, default=None, help="number of postings")
    args = parser.parse_args()
    n = args.n or (50_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="ls-bench-search-"))
    print(
        f"search bench: {n:,} postings, python {platform.python_version()}, {os.cpu_count()} CPUs, in {tmp}"
    )
    try:
        t0 = time.perf_counter()
        tv = TantivyBackend(tmp / "tantivy")
        tv.index(generate(n), batch=20_000)
        tv_index_s = time.perf_counter() - t0
        print(f"  tantivy indexed in {tv_index_s:.1f} s")

        t0 = time.perf_counter()
        fts5_index(tmp / "fts5.db", generate(n))
        fts_index_s = time.perf_counter() - t0
        print(f"  fts5 indexed in {fts_index_s:.1f} s")

        qs = queries(n)
        tv_p50, tv_p99 = latencies(lambda q: tv.search(SearchQuery(q, limit=20)), qs)
        fts = fts5_searcher(tmp / "fts5.db")
        fts_p50, fts_p99 = latencies(fts, qs)
        tv_size, fts_size = dir_size(tmp / "tantivy"), dir_size(tmp / "fts5.db")

        rows = [
            (
                "indexing (postings/s)",
                f"{n / tv_index_s:,.0f}",
                f"{n / fts_index_s:,.0f}",
                f"{fts_index_s / tv_index_s:.2f}x",
            ),
            ("query p50 (ms)", f"{tv_p50:.2f}", f"{fts_p50:.2f}", f"{fts_p50 / tv_p50:.2f}x"),
            ("query p99 (ms)", f"{tv_p99:.2f}", f"{fts_p99:.2f}", f"{fts_p99 / tv_p99:.2f}x"),
            (
                "index size (MB)",
                f"{tv_size / 1e6:,.0f}",
                f"{fts_size / 1e6:,.0f}",
                f"{fts_size / tv_size:.2f}x",
            ),
        ]
        print()
        print(f"{'':24}{'tantivy':>12}{'sqlite fts5':>14}{'ratio':>9}")
        for label, a, b, r in rows:
            print(f"{label:24}{a:>12}{b:>14}{r:>9}")
        print(
            f"({len(qs)} queries: words, phrases, CJK, mixed, IPs, emails, NOT; tantivy includes count, facets, snippets)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
