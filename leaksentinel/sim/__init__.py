"""The simulated underground: a demo company, pastes leaking its records, loopback servers.

Used by `leaksentinel demo` (no network needed) and by the tests, which know from the seed
exactly which records must be found:

    with Underground(seed=7) as world:
        source_url = world.base_url            # for `source add --kind pastebin --url`
        csv_text = company_csv(world.company)  # for `hash --csv`
        expected = world.expected_leaked_keys()
"""

from __future__ import annotations

from leaksentinel.sim.company import (
    DemoCompany,
    DemoRecord,
    company_csv,
    luhn_valid,
    make_demo_company,
)
from leaksentinel.sim.pastebin import ITEM_NOT_FOUND, ITEM_NOT_READY, NOT_WHITELISTED, PastebinSite
from leaksentinel.sim.postings import SimPaste, make_pastes
from leaksentinel.sim.receiver import Received, WebhookReceiver
from leaksentinel.sim.server import LoopbackHandler, LoopbackServer, Served

__all__ = [
    "ITEM_NOT_FOUND",
    "ITEM_NOT_READY",
    "NOT_WHITELISTED",
    "DemoCompany",
    "DemoRecord",
    "LoopbackHandler",
    "LoopbackServer",
    "PastebinSite",
    "Received",
    "Served",
    "SimPaste",
    "Underground",
    "WebhookReceiver",
    "company_csv",
    "luhn_valid",
    "make_demo_company",
    "make_pastes",
]


class Underground(Served):
    """The demo company and its paste site, built from one seed; `start()` serves the site."""

    def __init__(
        self,
        seed: int = 7,
        *,
        n_records: int = 200,
        n_noise: int = 12,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.seed = seed
        self.company: DemoCompany = make_demo_company(seed=seed, n_records=n_records)
        self.pastes: list[SimPaste] = make_pastes(self.company, seed=seed, n_noise=n_noise)
        self.site = PastebinSite(self.pastes, host=host, port=port)

    def start(self) -> str:
        """Start the paste site; returns its base URL."""
        return self.site.start()

    def stop(self) -> None:
        """Stop the paste site."""
        self.site.stop()

    @property
    def base_url(self) -> str:
        """Base URL of the running paste site."""
        return self.site.base_url

    def expected_leaked_keys(self) -> set[str]:
        """Record keys of every company record that appears in some paste."""
        return {k for p in self.pastes for k in p.leaked_keys}
