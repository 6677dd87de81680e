"""Look-alike start-up benchmark: the CPU a crawl or scan process spends building the look-alike matcher of a
tenant watching N domains, beside the same build as it was (every variant generated in the process, a
tenant's own domains checked one by one for each variant), in the same run.

Each figure is a fresh process (`python -c`), import of the module included:
  1. before: no cache, and `_within` as the loop over the tenant's domains it was;
  2. cold: this code with an empty cache directory (it computes and writes the cache);
  3. warm: this code with the cache the cold process wrote (what every later crawl and scan pays).

    python bench/lookalikes.py                 # 20, 80 and 200 domains, median of 3
    python bench/lookalikes.py --domains 300 --runs 1
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, resource, sys
from pathlib import Path
domains, mode, cache = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
from pipelines.detection import lookalikes as la
if mode == "before":
    la._within = lambda host, own: any(host == d or host.endswith("." + d) for d in own)
matcher = la.LookalikeMatcher([(1, d, i) for i, d in enumerate(domains)], cache_dir=None if mode == "before" else Path(cache))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "needles": matcher.count}))
"""

_WORDS = [
    "acme",
    "bank",
    "globex",
    "initech",
    "hooli",
    "piper",
    "umbrella",
    "cyber",
    "dyne",
    "mega",
    "corp",
    "shop",
    "pay",
    "secure",
    "cloud",
    "data",
    "tele",
    "post",
    "health",
    "credit",
    "union",
    "mutual",
    "trust",
    "card",
    "life",
    "energy",
    "air",
    "rail",
]


def watched_domains(count: int, seed: int = 1) -> list[str]:
    """`count` distinct brand-like domains (two words and a TLD), what a company registers."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < count:
        out.add(
            f"{rng.choice(_WORDS)}{rng.choice(['', '-'])}{rng.choice(_WORDS)}.{rng.choice(['com', 'cn', 'de', 'net', 'co.uk'])}"
        )
    return sorted(out)


def child(domains: list[str], mode: str, cache: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(domains), mode, str(cache)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, nargs="*", default=[20, 80, 200])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    baseline = child([], "before", Path("/nonexistent"))["cpu_s"]  # interpreter and imports
    print(f"CPU-s to build one tenant's look-alike matcher, fresh process (no domains: {baseline:.2f})")
    print(
        f"{'domains':>8s} {'needles':>8s} {'before':>9s} {'cold':>9s} {'warm':>9s}  (median of {args.runs})"
    )
    for count in args.domains:
        domains = watched_domains(count)
        figures: dict[str, list[float]] = {"before": [], "cold": [], "warm": []}
        needles = 0.0
        for _ in range(max(1, args.runs)):
            with tempfile.TemporaryDirectory(prefix="ls-bench-lookalikes-") as tmp:
                for mode in ("before", "cold", "warm"):
                    result = child(domains, mode, Path(tmp))
                    figures[mode].append(result["cpu_s"])
                    needles = result["needles"]
        med = {k: statistics.median(v) for k, v in figures.items()}
        print(f"{count:8d} {needles:8.0f} {med['before']:9.2f} {med['cold']:9.2f} {med['warm']:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
