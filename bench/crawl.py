"""Crawl benchmark: postings per second per core from fetch to stored, indexed and alerted, beside the
same spider with no item pipelines (Scrapy's own ceiling) in the same run, with peak RSS.

The simulated paste site (leaksentinel.sim's Pastebin scraping API, on loopback, in this process) serves
`--pastes` postings of about `--kb` KB each, written like bench/detect.py's mixed corpus (combo lists,
CSV, SQL, JSON lines, Chinese chat ads and prose, code, logs), every tenth with a leak of each watch
kind. The home is the embedded default (SQLite, tantivy, no servers) with three tenants registering
records, a domain, a keyword, a regex and a document (bench/detect.py's `setup_scan_home`).

Each run crawls the site twice with the real pastebin spider, each time as its own process
(`python -m crawlers.run` as a crawl job runs it):
  1. bare: ITEM_PIPELINES emptied: Scrapy fetching, parsing and building the items, nothing else;
  2. full: the pipelines (normalise, fingerprint, detect, store with its outbox; the search index
     written in batches of up to 200 postings as pipelines.search_index cuts them, the candidate index
     at the close), into a fresh home.
Start-up (interpreter, Scrapy, the pipelines' open) is measured by a crawl of an empty site and shown
apart. Per core = postings / CPU seconds of the crawl process (the site's own CPU is not counted).

Noise to know of: on ext4 without a journal (the root file system of the machine these figures come
from), creating a file shortly after many were deleted walks the recently deleted inodes, so the full
crawl's evidence files (one per posting) cost ~0.3-0.8 ms each after a benchmark or test run deleted its
homes, against ~0.09 ms in a quiet directory: `--shares` shows it as "store: evidence bytes".

    python bench/crawl.py                       # 2,000 postings of ~10 KB, 3 runs, medians
    python bench/crawl.py --pastes 300 --runs 1 # a quick look
    python bench/crawl.py --runs 1 --shares     # and where the full crawl's CPU goes, stage by stage
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import detect as corpus  # noqa: E402  (bench/detect.py: the corpus and the home with every watch kind)

from leaksentinel.sim import pastebin as sim_pastebin  # noqa: E402
from leaksentinel.sim.postings import SimPaste  # noqa: E402

TARGET_PER_CORE = 100.0
TARGET_SHARE_OF_BARE = 0.5

# The crawl process: crawlers.run's main, with the item pipelines emptied for the bare ceiling; it
# prints its own CPU time and peak RSS after the summary line.
_CHILD = """
import json, resource, sys
import crawlers.run as run
source, bare = int(sys.argv[1]), sys.argv[2] == "1"
if bare:
    settings_for = run.scrapy_settings_for
    def without_pipelines(settings, src):
        s = settings_for(settings, src)
        s.set("ITEM_PIPELINES", {}, priority="cmdline")
        return s
    run.scrapy_settings_for = without_pipelines
code = run.main(["--source", str(source)])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}), flush=True)
sys.exit(code)
"""


# The full crawl process again, each stage's function wrapped by a CPU-time counter of the crawl's thread
# (what a profile shows, without cProfile's per-call cost); stages are exclusive (a stage's inner stages
# are subtracted), the cycle collector's time is its own row, the other threads' CPU (tantivy's indexing
# threads, mostly) is a row of its own rather than counted in whichever stage ran beside it, and "Scrapy
# and the rest" is what no stage of the crawl's thread holds.
_STAGES_CHILD = _CHILD.replace(
    "code = run.main(",
    """
import gc, importlib, time
spent = {}
def timed(label, owner, name):
    fn = getattr(owner, name)
    def call(*args, **kwargs):
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.thread_time() - started
    setattr(owner, name, call)
for label, module, owner, name in STAGES:
    target = importlib.import_module(module)
    timed(label, getattr(target, owner) if owner else target, name)
collecting = [0.0]
def on_gc(phase, info):
    collecting[0] += time.thread_time() * (1 if phase == "stop" else -1)
gc.callbacks.append(on_gc)
code = run.main(""",
).replace(
    "print(json.dumps({",
    "spent['cycle collector'] = collecting[0]\n"
    "crawl_thread = resource.getrusage(resource.RUSAGE_THREAD)\n"
    "print(json.dumps({'stages': spent, 'thread_cpu_s': crawl_thread.ru_utime + crawl_thread.ru_stime}))\n"
    "print(json.dumps({",
)
#: (label, module, class or None, function) of every stage `--shares` times; each row's inner stages are
#: the rows listed under it with a deeper label (subtracted from it when printed).
STAGES = [
    ("normalise", "pipelines.normalize", "NormalizePipeline", "process_item"),
    ("fingerprint", "pipelines.fingerprint", "FingerprintPipeline", "process_item"),
    ("detect", "pipelines.detect", "DetectPipeline", "detect_items"),
    ("store: database transaction", "pipelines.store", None, "store_postings"),
    ("store: evidence bytes", "pipelines.store", None, "put_blobs"),
    ("store: fetch sidecar (no text)", "pipelines.store", "StorePipeline", "_keep_fetch"),
    ("candidate index", "pipelines.detection.candidates", "CandidateIndex", "flush"),
    ("search index: writer", "pipelines.search_index", "SearchIndexer", "flush"),
    ("search index: tokens", "core.search.tantivy_backend", None, "token_string"),
    ("search index: selectors", "core.search.tantivy_backend", None, "extract_selectors"),
]
#: Which stage holds which (its CPU is counted in both; the holder's row shows what is its own).
_INSIDE = {
    "store: evidence bytes": "store: database transaction",
    "search index: tokens": "search index: writer",
    "search index: selectors": "search index: writer",
}


def stage_shares(home: Path, source_id: int, postings: int) -> None:
    """Print where one full crawl's CPU goes, stage by stage (exclusive), per posting."""
    lines, _ = run_child(f"STAGES = {STAGES!r}\n" + _STAGES_CHILD, home, source_id, bare=False)
    spent: dict[str, float] = dict(lines[1]["stages"])
    total = float(lines[-1]["cpu_s"])
    crawl_thread = float(lines[1]["thread_cpu_s"])
    for inner, outer in _INSIDE.items():
        spent[outer] = spent.get(outer, 0.0) - spent.get(inner, 0.0)
    spent["Scrapy, start-up and the rest"] = crawl_thread - sum(spent.values())
    spent["other threads (tantivy's indexing)"] = total - crawl_thread
    print(f"\nCPU per stage of one full crawl ({total:.2f} CPU-s, {postings} postings; exclusive):")
    for label, cpu in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(
            f"  {label:34s} {cpu:7.2f} s {cpu / total:6.1%} {cpu / max(1, postings) * 1000:7.2f} ms/posting"
        )


def make_pastes(count: int, size: int, seed: int) -> tuple[list[SimPaste], list[corpus.Person]]:
    """`count` pastes of about `size` bytes in the corpus's format mix, with planted people and leaks."""
    rng = random.Random(seed)
    formats, weights = list(corpus.MIX), list(corpus.MIX.values())
    texts: list[str] = []
    planted: list[corpus.Person] = []
    for i in range(count):
        fmt = rng.choices(formats, weights)[0]
        people = [corpus.gen_person(rng)] if fmt in corpus.DENSE and i % 4 == 0 else []
        planted.extend(people)
        texts.append(corpus.posting_text(fmt, rng, size, people))
    texts = corpus.plant_watched(texts, seed)
    now = int(time.time())
    pastes = [
        SimPaste(
            key=f"b{i:07d}",
            title=f"paste {i}",
            user=f"user{i % 97}",
            syntax="text",
            date=now - count + i,
            text=text,
        )
        for i, text in enumerate(texts)
    ]
    return pastes, planted


def add_paste_source(home: Path, url: str, limit: int) -> int:
    from core.db import open_database
    from core.settings import Settings
    from leaksentinel.actions.sources import add_source

    db = open_database(Settings(home=home))
    source_id = int(add_source(db, "pastes", "pastebin", url, every="1h", options={"limit": limit})["id"])
    db.engine.dispose()
    return source_id


def run_child(code: str, home: Path, source_id: int, *, bare: bool) -> tuple[list[dict[str, Any]], float]:
    """Run a crawl child (`_CHILD` or a variant) on the home's source: its JSON lines and wall time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKSENTINEL_")}
    env |= {"LEAKSENTINEL_HOME": str(home), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(source_id), "1" if bare else "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    wall = time.perf_counter() - started
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or len(lines) < 2:
        raise SystemExit(f"crawl failed ({out.returncode}): {out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return lines, wall


def crawl(home: Path, source_id: int, *, bare: bool) -> dict[str, float]:
    """One crawl process: its summary, wall time, CPU seconds and peak RSS."""
    lines, wall = run_child(_CHILD, home, source_id, bare=bare)
    summary, usage = lines[0], lines[-1]
    return {
        "wall_s": wall,
        "cpu_s": float(usage["cpu_s"]),
        "maxrss_mb": usage["maxrss_kb"] / 1024,
        "fetched": float(summary.get("fetched", 0)),
        "postings": float(summary.get("postings", 0)),
        "new": float(summary.get("new", 0)),
        "alerts": float(summary.get("alerts", 0)),
        "indexed": float(bool(summary.get("indexed"))),
        "errors": float(summary.get("errors", 0)),
    }


def one_run(
    work: Path, pastes: list[SimPaste], planted: list[corpus.Person], n: int, order: int = 0
) -> dict[str, float]:
    """Bare and full crawls of the same site into fresh homes, and the start-up of each on an empty site."""
    figures: dict[str, float] = {}
    with sim_pastebin.PastebinSite([]) as empty, sim_pastebin.PastebinSite(pastes) as site:
        # bare first in even runs, full first in odd ones: the machine's drift within a run favours neither
        for bare in (True, False) if order % 2 == 0 else (False, True):
            name = "bare" if bare else "full"
            home = corpus.setup_scan_home(work / f"{name}-startup", planted)
            startup = crawl(home, add_paste_source(home, empty.base_url, n), bare=bare)
            home = corpus.setup_scan_home(work / name, planted)
            result = crawl(home, add_paste_source(home, site.base_url, n), bare=bare)
            done = result["fetched"] - 1 if bare else result["new"]  # bare: the listing is not a posting
            figures[f"{name}_startup_cpu_s"] = startup["cpu_s"]
            figures[f"{name}_postings"] = done
            figures[f"{name}_per_core"] = done / result["cpu_s"]
            figures[f"{name}_per_core_steady"] = done / max(1e-9, result["cpu_s"] - startup["cpu_s"])
            figures[f"{name}_per_s"] = done / result["wall_s"]
            figures[f"{name}_rss_mb"] = result["maxrss_mb"]
            figures[f"{name}_errors"] = result["errors"]
            if not bare:
                figures["alerts"] = result["alerts"]
                figures["indexed"] = result["indexed"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pastes", type=int, default=2000, help="postings on the simulated site")
    parser.add_argument("--kb", type=float, default=10.0, help="size of a posting in KB")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are printed")
    parser.add_argument("--shares", action="store_true", help="also: one full crawl's CPU per stage")
    args = parser.parse_args(argv)
    # the scraping API lists at most 250 pastes per call; the simulated one lists them all at once
    sim_pastebin.MAX_LIMIT = max(sim_pastebin.MAX_LIMIT, args.pastes)
    pastes, planted = make_pastes(args.pastes, int(args.kb * 1000), 5)
    size = sum(p.size for p in pastes)
    print(
        f"site: {len(pastes)} pastes, {size / 1e6:.1f} MB; {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}; home: embedded default, 3 tenants x every watch kind",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="ls-bench-crawl-") as tmp:
        for run in range(max(1, args.runs)):
            work = Path(tmp) / f"run{run}"
            work.mkdir()
            f = one_run(work, pastes, planted, args.pastes, run)
            results.append(f)
            print(
                f"  run {run + 1}: full {f['full_per_core']:.1f} postings/CPU-s ({f['full_postings']:.0f} stored, "
                f"{f['alerts']:.0f} alerts, indexed {bool(f['indexed'])}, {f['full_rss_mb']:.0f} MB peak), "
                f"bare {f['bare_per_core']:.1f} postings/CPU-s ({f['bare_rss_mb']:.0f} MB peak): "
                f"{f['full_per_core'] / max(1e-9, f['bare_per_core']):.0%} of bare",
                flush=True,
            )

    def med(name: str) -> float:
        return statistics.median(r[name] for r in results)

    # the share of each run (full and bare measured minutes apart, on a machine whose speed drifts), then
    # their median: the ratio of the two medians could pair a fast run's bare with a slow run's full
    share = statistics.median(r["full_per_core"] / max(1e-9, r["bare_per_core"]) for r in results)
    print()
    print(f"{'measure (median of ' + str(len(results)) + ')':44s} {'full':>9s} {'bare':>9s}  target")
    print("-" * 80)
    rows = [
        ("postings/s per core, start-up included", "per_core", f">= {TARGET_PER_CORE:.0f} full"),
        ("postings/s per core, start-up excluded", "per_core_steady", ""),
        ("postings/s wall clock", "per_s", ""),
        ("start-up CPU-s (a crawl of an empty site)", "startup_cpu_s", ""),
        ("peak RSS MB", "rss_mb", ""),
        ("postings (stored / fetched)", "postings", ""),
    ]
    for label, key, target in rows:
        print(f"{label:44s} {med('full_' + key):9.1f} {med('bare_' + key):9.1f}  {target}")
    print(
        f"full / bare per core, median of the runs' own: {share:.0%} (target >= {TARGET_SHARE_OF_BARE:.0%}); "
        f"alerts {med('alerts'):.0f}; errors full {med('full_errors'):.0f}, bare {med('bare_errors'):.0f}"
    )
    if args.shares:
        with (
            tempfile.TemporaryDirectory(prefix="ls-bench-crawl-") as tmp,
            sim_pastebin.PastebinSite(pastes) as site,
        ):
            home = corpus.setup_scan_home(Path(tmp) / "shares", planted)
            stage_shares(home, add_paste_source(home, site.base_url, args.pastes), args.pastes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
