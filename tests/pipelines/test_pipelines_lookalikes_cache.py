"""Look-alikes kept across processes (pipelines.detection.lookalikes.domain_needles) and a tenant's own
domains looked up by their parents (`_within`): the matcher a process builds from the cache is the one it
would compute, a cache it cannot trust is computed again, and one it cannot write only costs time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection import lookalikes as la

DOMAINS = [(1, "acme-bank.com", 10), (1, "acme.cn", 11), (2, "globex.de", 12), (2, "bücher.de", 13)]


def _needles(matcher: la.LookalikeMatcher) -> dict[str, tuple[int, tuple[object, ...]]]:
    return dict(matcher._needles)


def _refuse_to_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> object:
        raise AssertionError("computed again instead of read from the cache")

    monkeypatch.setattr(la, "variants", refused)


def test_a_matcher_built_from_the_cache_is_the_one_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = la.LookalikeMatcher(DOMAINS)
    first = la.LookalikeMatcher(DOMAINS, cache_dir=tmp_path)  # computes and writes
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == len(DOMAINS) and all(la._cache_tag() in str(f) for f in files)
    _refuse_to_compute(monkeypatch)
    cached = la.LookalikeMatcher(DOMAINS, cache_dir=tmp_path)
    assert _needles(cached) == _needles(first) == _needles(computed)
    assert cached._hashes == computed._hashes and cached.count == computed.count > 1000
    text = "login at acme-bannk.com or xn--bcher-kva.de today\nalso acme.cn.evil.example"
    assert cached.find(text) == computed.find(text) != []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"domain": "other.com", "limit": 2000, "variants": []}',
        b'{"domain": "acme-bank.com", "limit": 5, "variants": []}',
        b'{"domain": "acme-bank.com", "limit": 2000, "variants": [[1]]}',
        b'{"domain": "acme-bank.com", "limit": 2000}',
    ],
)
def test_a_cache_file_that_cannot_be_trusted_is_computed_again(tmp_path: Path, content: bytes) -> None:
    expected = la.domain_needles("acme-bank.com")
    la.domain_needles("acme-bank.com", cache_dir=tmp_path)
    (path,) = list(tmp_path.rglob("*.json"))
    path.write_bytes(content)
    assert la.domain_needles("acme-bank.com", cache_dir=tmp_path) == expected
    assert json.loads(path.read_bytes())["domain"] == "acme-bank.com"  # written over


def test_a_cache_of_another_version_is_not_read_and_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    la.domain_needles("acme-bank.com", cache_dir=tmp_path)
    real_tag = la._cache_tag()
    calls: list[str] = []
    real = la.variants
    monkeypatch.setattr(la, "variants", lambda d, limit=la.MAX_VARIANTS: (calls.append(d), real(d, limit))[1])
    monkeypatch.setattr(la, "_cache_tag", lambda: "v999-dnstwist-0")
    (tmp_path / "notes").mkdir()  # not a cache directory: kept
    (tmp_path / "v1-other").write_text("kept")  # not named like one either
    la.domain_needles("acme-bank.com", cache_dir=tmp_path)
    assert calls == ["acme-bank.com"]
    # the other version's directory is deleted by this version's first write; nothing else is
    assert {p.parent.name for p in tmp_path.rglob("*.json")} == {"v999-dnstwist-0"}
    assert not (tmp_path / real_tag).exists()
    assert (tmp_path / "notes").is_dir() and (tmp_path / "v1-other").read_text() == "kept"
    # later writes of the same version purge nothing (another domain joins the same directory)
    monkeypatch.setattr(la, "_purge_other_versions", lambda current: calls.append("purged"))
    la.domain_needles("globex.de", cache_dir=tmp_path)
    assert "purged" not in calls


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    matcher = la.LookalikeMatcher(DOMAINS, cache_dir=blocked)
    assert _needles(matcher) == _needles(la.LookalikeMatcher(DOMAINS))


def _within_reference(host: str, domains: set[str]) -> bool:
    """The definition `_within` replaced (a loop over the tenant's domains)."""
    return any(host == d or host.endswith("." + d) for d in domains)


_LABEL = st.text(alphabet="abcx-", min_size=1, max_size=4)
_HOST = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(host=_HOST, domains=st.sets(_HOST, max_size=6))
def test_within_is_the_loop_it_replaced(host: str, domains: set[str]) -> None:
    assert la._within(host, domains) == _within_reference(host, domains)
    for d in domains:  # every host under a domain, and the domain itself
        assert la._within(f"x.{d}", domains) and la._within(d, domains)
