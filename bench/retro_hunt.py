"""YARA retro-hunt throughput over stored postings, beside the same rules matched in memory (the baseline).

A temporary home (SQLite) gets N stored postings of random words (about 8 kB each), one in a hundred
holding the rule's string; a YARA watch is registered and hunted over them (alerts raised as a crawl
would). Baseline: ``yara.Rules.match`` over the same texts held in memory (no database, no alerts).

Bounded: about 10 s on 2 cores with the defaults.

    python bench/retro_hunt.py [--postings 5000] [--size 8000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RULES = (
    'rule Falcon { strings: $a = "project-falcon" nocase $b = /falcon_[0-9a-f]{8}/ condition: any of them }\n'
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=5000)
    parser.add_argument("--size", type=int, default=8000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ls-bench-hunt-"))
    os.environ["LEAKSENTINEL_HOME"] = str(work / "home")

    import yara

    from core.db import open_database
    from core.models import Posting, Source
    from core.settings import load_settings
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import add_yara_watch
    from pipelines.retro import yara_retro_hunt

    settings = load_settings()
    db = open_database(settings)
    tenant = add_tenant(db, "acme", [], [])
    rng = random.Random(1)
    texts = []
    for i in range(args.postings):
        words = " ".join(
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randrange(3, 9)))
            for _ in range(args.size // 6)
        )
        texts.append(words + ("\nproject-falcon\n" if i % 100 == 0 else ""))
    with db.session() as sess:
        source = Source(name="bench", kind="rss", url="http://bench.invalid/", schedule=None, enabled=False)
        sess.add(source)
        sess.flush()
        for i, text in enumerate(texts):
            sess.add(
                Posting(
                    source_id=source.id,
                    url=f"http://bench.invalid/{i}",
                    content_hash=hashlib.sha256(text.encode()).hexdigest(),
                    simhash=rng.getrandbits(63),
                    text=text,
                    size=len(text),
                )
            )
    rules = work / "falcon.yar"
    rules.write_text(RULES)
    watch = add_yara_watch(db, tenant["id"], rules)
    mb = sum(len(t) for t in texts) / 1e6

    compiled = yara.compile(source=RULES)
    started = time.perf_counter()
    matched = sum(1 for t in texts if compiled.match(data=t.encode()))
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    result = yara_retro_hunt(db, settings, watch["id"])
    hunt = time.perf_counter() - started
    assert result.status == "done" and result.matches == matched, result

    print(f"postings: {args.postings}, text: {mb:.1f} MB, matching postings: {matched}")
    print(f"baseline  yara.match in memory:           {baseline:6.2f} s  {mb / baseline:7.1f} MB/s")
    print(
        f"retro-hunt (SQLite, {result.alerts} alerts raised): {hunt:6.2f} s  {mb / hunt:7.1f} MB/s  "
        f"({hunt / baseline:.1f}x the baseline)"
    )


if __name__ == "__main__":
    main()
    shutil.rmtree(os.environ["LEAKSENTINEL_HOME"].rsplit("/", 1)[0], ignore_errors=True)
