"""Look-alike generation and matching (pipelines/detection/lookalikes.py)."""

from __future__ import annotations

import time

from pipelines.detection.lines import Deadline
from pipelines.detection.lookalikes import MAX_VARIANTS, LookalikeMatcher, variants


def test_variants_cover_each_technique_and_exclude_the_domain() -> None:
    found = dict(variants("acme-bank.com"))
    assert "acme-bank.com" not in found
    expected = {
        "acmebank.com": "omission",
        "acme-bnak.com": "transposition",
        "acme-bannk.com": "repetition",
        "acme-banl.com": "replacement",
        "acme-bsank.com": "insertion",
        "acrne-bank.com": "homoglyph",
        "acme-bank-secure.com": "word-addition",
        "login-acme-bank.com": "word-addition",
        "acme-bank.net": "tld-swap",
        "acme-bank.io": "tld-swap",
        "acme-banc.com": "bit-flip",
    }
    for variant, technique in expected.items():
        assert found.get(variant) == technique, variant
    idn = "acme-bánk.com".encode("idna").decode("ascii")
    assert found.get(idn) == "idn-homoglyph"
    assert all(v.isascii() for v in found)  # IDN variants are kept in punycode


def test_variants_are_bounded_and_keep_the_likeliest_first() -> None:
    long = "a-very-long-company-name-of-many-letters.com"
    assert len(variants(long)) <= MAX_VARIANTS
    few = dict(variants(long, 50))
    assert len(few) == 50
    assert set(few.values()) <= {"omission", "transposition", "repetition", "replacement", "insertion"}


def test_unparseable_domain_has_no_variants() -> None:
    assert variants("localhost") == () or all("." in v for v, _ in variants("localhost"))


def test_match_is_per_tenant_whole_host_and_one_per_variant() -> None:
    matcher = LookalikeMatcher([(1, "acme-bank.com", 10), (2, "globex.com", 20)])
    text = (
        "a@acmebank.com:x\n"  # line 1
        "again a@acmebank.com and https://acmebank.com/\n"  # repeats: still one finding
        "not hosts: xacmebank.com acmebank.com.evil.net acmebank.community\n"
        "https://sub.glodex.com/login\n"  # line 4
    )
    hits = matcher.find(text)
    assert [(h.tenant_id, h.variant, h.line, h.technique) for h in hits] == [
        (1, "acmebank.com", 1, "omission"),
        (2, "glodex.com", 4, "homoglyph"),
    ]
    assert hits[0].email == "a@acmebank.com" and hits[1].email is None


def test_tenant_watching_a_variant_exactly_gets_no_lookalike_of_it() -> None:
    # acme-bank.net is a TLD swap of acme-bank.com, but this tenant watches it exactly; another tenant
    # watching only acme-bank.com does see it as a look-alike.
    matcher = LookalikeMatcher([(1, "acme-bank.com", 1), (1, "acme-bank.net", 2), (2, "acme-bank.com", 3)])
    hits = matcher.find("it@acme-bank.net\nhttps://mail.acme-bank.com\n")
    assert [(h.tenant_id, h.variant) for h in hits] == [(2, "acme-bank.net")]


def test_cost_follows_the_text_not_the_variants() -> None:
    domains = [(t, f"brand{t}-bank.com", t) for t in range(1, 21)]
    matcher = LookalikeMatcher(domains)
    assert matcher.count > 20 * 300  # thousands of needles
    line = "user{0}@example.com:password{0} https://example.org/path?q={0}\n"
    text = "".join(line.format(i) for i in range(20_000)) + "x@brand7-bnak.com:pw\n"
    started = time.perf_counter()
    hits = matcher.find(text, Deadline.after(10.0))
    elapsed = time.perf_counter() - started
    assert [(h.tenant_id, h.variant, h.line) for h in hits] == [(7, "brand7-bnak.com", 20_001)]
    assert elapsed < 2.0, elapsed
