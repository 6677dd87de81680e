"""The pastebin spider against the simulated scraping API: sentinels, not-ready pastes, the cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.pastebin import is_sentinel
from leaksentinel.actions.sources import add_source
from leaksentinel.sim import Underground
from leaksentinel.sim.pastebin import ITEM_NOT_FOUND, ITEM_NOT_READY, NOT_WHITELISTED


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (ITEM_NOT_FOUND, "not_found"),
        (ITEM_NOT_READY, "not_ready"),
        (NOT_WHITELISTED.format(ip="1.2.3.4"), "no_access"),
    ],
)
def test_sentinels_are_recognised(body: str, kind: str) -> None:
    assert is_sentinel(body.encode()) == kind


def test_a_real_paste_is_not_a_sentinel() -> None:
    assert is_sentinel(b"Error handling in Python\nuse try/except") is None
    assert is_sentinel(b"x" * 1000) is None


def test_crawl_stores_every_paste_with_metadata_and_refetches_not_ready_later() -> None:
    settings = load_settings()
    db = open_database(settings)
    with Underground(seed=3, n_noise=4) as site:
        pastes = site.pastes
        late = pastes[1]
        site.site.not_ready.add(late.key)
        add_source(db, "pb", "pastebin", site.base_url)
        first = run_crawl(settings, "pb")
        assert first["status"] == "ok"
        assert first["postings"] == len(pastes) - 1 and first["new"] == len(pastes) - 1
        with db.session() as sess:
            stored = {p.url.rsplit("/", 1)[1]: p for p in sess.scalars(select(Posting))}
        assert late.key not in stored
        sample = pastes[0]
        row = stored[sample.key]
        assert row.title == sample.title and row.author == (sample.user or None)
        assert row.text.strip() == sample.text.strip()
        assert row.published is not None and int(row.published.timestamp()) == sample.date
        assert (
            row.evidence_sha256
            and (settings.evidence_dir / row.evidence_sha256[:2] / row.evidence_sha256).is_file()
        )

        # The paste becomes ready: the next run fetches it and nothing else.
        site.site.not_ready.discard(late.key)
        site.site.requests.clear()
        second = run_crawl(settings, "pb")
        assert second["new"] == 1
        items = [r for r in site.site.requests if "api_scrape_item.php" in r]
        assert items == [f"/api_scrape_item.php?i={late.key}"]
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "pb"))
            assert source is not None and source.last_status == "ok" and source.cursor["pending"] == []


def test_unreachable_source_is_a_failed_run() -> None:
    settings = load_settings()
    db = open_database(settings)
    add_source(db, "dead", "pastebin", "http://127.0.0.1:9")
    summary = run_crawl(settings, "dead", timeout_s=60)
    assert summary["status"] == "failed" and summary["fetched"] == 0 and summary["errors"] > 0
