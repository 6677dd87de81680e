"""The native look-alike pass (``_fingerprint.host_spans``) finds exactly what the Aho-Corasick reference finds.

Why differential: the native pass only hands back whole hosts whose hash is a variant's, so a mistake in
its idea of a host boundary, of the characters a host holds, or of the order of matches would silently
lose or move a finding. Every text is scanned both ways and the hits (tenant, variant, line, address,
technique) compared, on text made of the variants themselves, their neighbours, the characters that
bound a host (dots, hyphens, underscores, at signs, line ends) and letters of other scripts.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.detection import lookalikes
from pipelines.detection.lookalikes import LookalikeMatcher

DOMAINS = [(1, "acme-bank.com", 10), (2, "globex.com", 20), (2, "qq.com", 21), (3, "initech.example", 30)]
MATCHER = LookalikeMatcher(DOMAINS)
NEEDLES = sorted(MATCHER._needles)

native = pytest.mark.skipif(not MATCHER.native(), reason="native look-alike pass not built")


def _hits(found: list[lookalikes.LookalikeHit]) -> list[tuple[object, ...]]:
    return [(h.tenant_id, h.watch_id, h.variant, h.technique, h.line, h.email) for h in found]


PIECES = st.one_of(
    st.sampled_from(NEEDLES),
    st.sampled_from(["acme-bank.com", "globex.com", "qq.com", "mail.", "sub.", "www."]),
    st.sampled_from([".", "-", "_", "@", " ", "\n", "/", ":", "x", "9", "é", "数据", "ß", "İ", "Ａ", "\t"]),
    st.text(alphabet="abcq.-@_x1 \n", max_size=6),
)


@native
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40))
def test_native_pass_finds_what_the_automaton_finds(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _hits(MATCHER.find(text)) == _hits(MATCHER.find_reference(text))


@native
def test_native_pass_on_hosts_at_every_boundary() -> None:
    text = (
        "a@acmebank.com:x\nagain https://acmebank.com/ and acmebank.com.\n"
        "not hosts: xacmebank.com acmebank.com.evil.net acmebank.community _acmebank.com acmebank.com_\n"
        "sub.glodex.com -glodex.com glodex.com- .glodex.com qq.co q.com qq.com.cn\n"
        "unicode: аcme-bank.com ïnitech.example ЇNITECH.EXAMPLE\n" + "acmebank.com"
    )
    found = MATCHER.find(text)
    assert found and _hits(found) == _hits(MATCHER.find_reference(text))
    # the order of matches decides which occurrence (line, address) a variant is reported with
    assert [(h.variant, h.line, h.email) for h in found if h.variant == "acmebank.com"] == [
        ("acmebank.com", 1, "a@acmebank.com")
    ]


@native
def test_every_variant_is_found_in_every_setting() -> None:
    settings_ = ["{}", "u@{}:pw", "https://{}/x", "mail.{}.", "({})", "-{}", "{}_", "x{}", "{}.evil.net"]
    text = "\n".join(form.format(needle) for needle in NEEDLES for form in settings_)
    found = MATCHER.find(text)
    assert (
        len(found) >= len({(e.tenant_id, e.variant) for _, es in MATCHER._needles.values() for e in es}) // 2
    )
    assert _hits(found) == _hits(MATCHER.find_reference(text))


@native
def test_hash_collisions_and_long_runs_are_checked_against_the_needles() -> None:
    # a needle's hash found on a host that is not the needle is dropped; runs longer than any needle,
    # and hosts of many labels, are walked no further than the longest needle
    text = ("a." * 5000) + "acmebank.com " + ("b-" * 5000) + "\n" + "x" * 100_000 + ".com"
    assert _hits(MATCHER.find(text)) == _hits(MATCHER.find_reference(text))


def test_switched_off_by_the_scanner_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENTINEL_NATIVE_SCAN", "0")
    assert not MATCHER.native()
    assert _hits(MATCHER.find("a@acmebank.com")) == [(1, 10, "acmebank.com", "omission", 1, "a@acmebank.com")]


def test_a_needle_with_a_character_no_host_holds_takes_the_automaton(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lookalikes._needle_chars("acme bank.com") is False
    assert lookalikes._needle_chars("ācme-bank.com") is True
    monkeypatch.setattr(lookalikes, "_needle_chars", lambda needle: "z" not in needle)
    matcher = LookalikeMatcher([(1, "acme-bank.com", 10)])  # one variant "holds" a character no host holds
    assert not matcher.native()
    assert _hits(matcher.find("a@acmebank.com")) == [(1, 10, "acmebank.com", "omission", 1, "a@acmebank.com")]


def test_native_required_where_built() -> None:
    if os.environ.get("LEAKSENTINEL_TEST_REQUIRE_NATIVE") != "1":
        pytest.skip("LEAKSENTINEL_TEST_REQUIRE_NATIVE=1 is set by CI only")
    assert MATCHER.native()


@native
def test_the_reference_automaton_is_built_only_when_the_reference_path_runs() -> None:
    """The native pass needs no Aho-Corasick automaton; building one in every scanning process was ~10% of
    a matcher's start-up. The reference path builds it on first use and finds what the native pass finds."""
    matcher = LookalikeMatcher(DOMAINS)
    text = f"mail me at x@{NEEDLES[0]} or see {NEEDLES[-1]}\n"
    native_hits = _hits(matcher.find(text))
    assert native_hits and matcher._automaton is None
    assert _hits(matcher.find_reference(text)) == native_hits
    assert matcher._automaton is not None
