"""Whole-text stages: the same findings as reading line by line, no work per line, one shared deadline.

The per-line implementations the keyword, regex and secret stages had before are kept here as the
reference (``_old_*``); hypothesis compares them with today's whole-text stages on generated texts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import fold
from pipelines.detection import keywords as kw
from pipelines.detection import regexes as rx
from pipelines.detection.keywords import KeywordHit, KeywordMatcher
from pipelines.detection.lines import BLOCK_CHARS, Deadline, LineIndex, line_blocks
from pipelines.detection.regexes import RegexHit, RegexMatcher
from pipelines.detection.secrets import DETECTORS, SecretHit, find_secrets

# --------------------------------------------------------------------------- the per-line reference


def _old_keywords(matcher: KeywordMatcher, text: str) -> list[KeywordHit]:
    """KeywordMatcher.find as it was: fold and run the automaton line by line."""
    if not len(matcher) or not text:
        return []
    hits: list[KeywordHit] = []
    done: set[str] = set()
    for lineno, line in enumerate(text[: kw.MAX_TEXT_CHARS].split("\n"), 1):
        norm_line = fold(line)
        for end_index, (folded, bucket) in matcher._automaton.iter(norm_line):
            start, end = end_index - len(folded) + 1, end_index + 1
            if folded in done or not kw._on_boundaries(norm_line, start, end, folded):
                continue
            done.add(folded)
            excerpt = kw._excerpt(line, norm_line, start, end)
            hits.extend(KeywordHit(e.tenant_id, e.watch_id, e.keyword, lineno, excerpt) for e in bucket)
        if len(done) == len(matcher):
            break
    return hits


def _old_regexes(items: list[tuple[int, int, str]], text: str) -> list[RegexHit]:
    """RegexMatcher.find as it was: a Set per line, then the pattern on the lines the Set named."""
    by_pattern: dict[str, list[tuple[int, int]]] = {}
    for tenant_id, watch_id, pattern in items:
        bucket = by_pattern.setdefault(pattern, [])
        if (tenant_id, watch_id) not in bucket:
            bucket.append((tenant_id, watch_id))
    patterns = list(by_pattern)
    if not patterns or not text:
        return []
    compiled = [rx.compile_watch_regex(p) for p in patterns]
    shards = rx.build_sets(patterns, rx.re2_options(rx.SET_MAX_MEM))
    hits: list[RegexHit] = []
    done: set[int] = set()
    for chunk in rx.iter_line_chunks(text):
        for index in rx.set_matches(shards, chunk.text):
            if index in done:
                continue
            match = rx.first_match(compiled[index], chunk)
            if match is None:
                continue
            done.add(index)
            matched = match.group(0)[: rx.MAX_MATCHED_CHARS]
            hits.extend(
                RegexHit(t, w, patterns[index], chunk.line, matched) for t, w in by_pattern[patterns[index]]
            )
        if len(done) == len(patterns):
            break
    return hits


_OLD_SECRET_COMPILED = [re2.compile(d.pattern, rx.re2_options()) for d in DETECTORS]
_OLD_SECRET_SETS = rx.build_sets([d.pattern for d in DETECTORS], rx.re2_options(16 << 20))


def _old_secrets(text: str) -> list[SecretHit]:
    """find_secrets as it was: a Set per line, then each named detector over that line."""
    if not text:
        return []
    hits: list[SecretHit] = []
    seen: set[tuple[str, str]] = set()
    for chunk in rx.iter_line_chunks(text):
        for index in rx.set_matches(_OLD_SECRET_SETS, chunk.text):
            detector, compiled = DETECTORS[index], _OLD_SECRET_COMPILED[index]
            for match in compiled.finditer(chunk.text):
                if not chunk.holds(match.start(), match.end()):
                    continue
                value = match.group(1) if compiled.groups else match.group(0)
                if value and (detector.check is None or detector.check(value)):
                    hit = SecretHit(detector.name, chunk.line, value[: rx.MAX_MATCHED_CHARS])
                    if (hit.detector, hit.matched) not in seen:
                        seen.add((hit.detector, hit.matched))
                        hits.append(hit)
    generic = {"generic_password", "generic_api_key"}
    specific = {h.matched for h in hits if h.detector not in generic}
    return [h for h in hits if h.detector not in generic or h.matched not in specific]


# --------------------------------------------------------------------------- generated texts

_TOKENS = [
    "\n",
    "\n",
    "\n\n\n",
    "\r\n",
    "\r",
    " ",
    "  ",
    "\t",
    "acme",
    "ACME",
    "Acme Corp",
    "ＡＣＭＥ",
    "acmeplex",
    "ACME-",
    "123456",
    "42",
    "x",
    "y",
    "z",
    "é",
    "É",
    "ß",
    "İ",
    "ﬁ",
    "客户数据",
    "客户",
    "条",
    "_",
    "-",
    ":",
    "=",
    '"',
    "'",
    "@",
    "secret",
    "corp",
    "corp\nsecret",
    "password=",
    "api_key: ",
    "Tr0ub4dor&3xK!",
    "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
    "AKIA" + "Q2X7RZ5V3M8NP4KW",
    "AKIAIOSFODNN7EXAMPLE",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "-----BEGIN RSA PRIVATE KEY-----",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "AIza" + "SyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tU1v",
    "\ud800",
    "\u2028",
    "\x85",
]

_texts = st.lists(
    st.one_of(st.sampled_from(_TOKENS), st.text(alphabet="abcxyz019 \n-_:=é客", max_size=6)), max_size=60
).map("".join)

#: small blocks put block ends (and long lines across them) inside the generated texts
_block_sizes = st.sampled_from([1, 3, 16, 64, BLOCK_CHARS])

_KEYWORDS = ["acme", "Acme Corp", "ＡＣＭＥ", "客户数据", "ß", "ss", "x y", "corp\nsecret", "é", "fi", "42"]
_PATTERNS = [
    r"ACME-\d{6}",
    r"^acme",
    r"corp$",
    r"x\s*y",
    r"x[^z]+y",
    r"(?i)acme\s+corp",
    r"\bacme\b",
    r"x.*y",
    r"(?s)x.y",
    r"\Aacme",
    r"corp\z",
    r"x\Cy",
    r"(?m)^y",
    r"(?-m)^z",
    r"[[:space:]]+secret",
    r"é+",
    r"客户\d*",
    r"\d{2}$",
    r"[^a-z]{3,}",
    r"\W\w",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_texts,
    chosen=st.lists(st.sampled_from(_KEYWORDS), min_size=1, max_size=6, unique=True),
    block=_block_sizes,
)
def test_keywords_whole_text_equals_per_line(text: str, chosen: list[str], block: int) -> None:
    matcher = KeywordMatcher([(1 + i % 2, 10 + i, k) for i, k in enumerate(chosen)])
    with mock.patch.object(kw, "BLOCK_CHARS", block):
        assert matcher.find(text) == _old_keywords(matcher, text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_texts,
    chosen=st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=6, unique=True),
    block=_block_sizes,
)
def test_regexes_whole_text_equal_per_line(text: str, chosen: list[str], block: int) -> None:
    items = [(1 + i % 2, 10 + i, p) for i, p in enumerate(chosen)]
    with mock.patch.object(rx, "BLOCK_CHARS", block):
        new = RegexMatcher(items).find(text)
    old = _old_regexes(items, text)
    # within one line the old order was the Set's (arbitrary): compare as sorted
    assert sorted(new, key=repr) == sorted(old, key=repr)
    assert [h.line for h in new] == sorted(h.line for h in new)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts, block=_block_sizes)
def test_secrets_whole_text_equal_per_line(text: str, block: int) -> None:
    with mock.patch.object(rx, "BLOCK_CHARS", block):
        new = find_secrets(text)
    assert sorted(new, key=repr) == sorted(_old_secrets(text), key=repr)
    assert [h.line for h in new] == sorted(h.line for h in new)


def test_references_agree_on_the_existing_examples() -> None:
    """The differential tests compare against something that finds things."""
    text = "intro\r\nticket ACME-123456 x\n  y\npassword=Tr0ub4dor&3xK!\n" + _TOKENS[40] + "\n"
    assert _old_secrets(text) == find_secrets(text) != []
    items = [(1, 1, r"ACME-\d{6}"), (1, 2, r"x\s*y"), (1, 3, r"\Aticket")]
    assert [(h.watch_id, h.line) for h in RegexMatcher(items).find(text)] == [(1, 2), (3, 2)]
    assert sorted(_old_regexes(items, text), key=repr) == sorted(RegexMatcher(items).find(text), key=repr)
    keywords = KeywordMatcher([(1, 1, "corp\nsecret"), (1, 2, "ＡＣＭＥ corp")])
    text = "acme corp\nsecret\nthe Acme Corp."
    assert (
        [(h.watch_id, h.line) for h in keywords.find(text)]
        == [(2, 1)]
        == [(h.watch_id, h.line) for h in _old_keywords(keywords, text)]
    )


@pytest.mark.parametrize("step", [1, 2, 7, 4096])
def test_line_index_against_split(step: int) -> None:
    rng = random.Random(step)
    for _ in range(200):
        text = "".join(rng.choice(["a", "\n", "\n\n", "bc", "é"]) for _ in range(rng.randint(0, 40)))
        index = LineIndex(text, step=step)
        lines = text.split("\n")
        for offset in range(len(text) + 1):
            assert index.line_of(offset) == text.count("\n", 0, offset) + 1
        for number, line in enumerate(lines, 1):
            assert index.line(number) == line
        assert index.line_start(len(lines) + 1) == len(text)
        raw = text.encode()
        assert LineIndex(raw, step=step).line_of(len(raw)) == len(lines)


def test_line_blocks_end_on_line_ends() -> None:
    text = ("abc\n" * 10) + "x" * 50 + "\nend"
    blocks = list(line_blocks(text, 8))
    assert "".join(text[a:b] for a, b in blocks) == text
    assert all(text[b - 1] == "\n" for _, b in blocks[:-1])
    assert (text.index("x"), text.index("end")) in blocks  # a long line stays whole
    assert list(line_blocks("", 8)) == []


# --------------------------------------------------------------------------- no work per line


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls = [0]
    real: Callable[..., Any] = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _leak_in_newlines(lines: int) -> str:
    half = "\n" * (lines // 2)
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    return (
        half
        + "jane.doe@acme.example:hunter2\nproject falcon is on\nticket ACME-123456\n"
        + token
        + "\n"
        + half
    )


def test_twenty_mb_of_newlines_is_read_in_blocks(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """20 MB of empty lines and one leak: every finding, and the keyword, regex and secret stages
    make a call per block (about 20), not one per line (20 million)."""
    assert cli("tenant", "add", "acme", "--domain", "acme.example").code == 0
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email\nc-1,jane.doe@acme.example\n", encoding="utf-8")
    records = tmp_path / "c.jsonl"
    records.write_text(cli("hash", "--csv", str(csv_path), "--key-column", "id").out, encoding="utf-8")
    assert cli("watch", "add", "--tenant", "acme", "--records", str(records)).code == 0
    assert cli("watch", "add", "--tenant", "acme", "--keyword", "Project Falcon").code == 0
    assert cli("watch", "add", "--tenant", "acme", "--regex", r"ACME-\d{6}").code == 0
    posting = tmp_path / "newlines.txt"
    posting.write_text(_leak_in_newlines(20_000_000), encoding="utf-8")
    folds = _counting(monkeypatch, kw, "fold")
    # the regex watches and the secret detectors share one Set pass (both read this posting): one call
    # per block for the two
    sets = _counting(monkeypatch, rx, "set_matches")
    result = cli("scan", str(posting), "--json")
    assert result.code == 0, result.err
    assert "time limit" not in result.err
    found = {(f["kind"], f["line"]) for f in result.jsonl()}
    assert found == {
        ("record", 10_000_001),
        ("domain", 10_000_001),
        ("keyword", 10_000_002),
        ("regex", 10_000_003),
        ("secret", 10_000_004),
    }
    blocks = 20_000_000 // BLOCK_CHARS + 2
    assert 0 < folds[0] <= blocks
    assert 0 < sets[0] <= blocks


# --------------------------------------------------------------------------- the deadline


def _expired() -> Deadline:
    return Deadline(at=100.0, clock=lambda: 200.0)


def _expires_after(calls: int) -> Deadline:
    """A deadline whose clock passes it after `calls` looks (no sleeping)."""
    looks = [0]

    def clock() -> float:
        looks[0] += 1
        return 0.0 if looks[0] <= calls else 1e9

    return Deadline(at=1.0, clock=clock)


def test_each_stage_given_an_expired_deadline_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "project falcon\nACME-123456\npassword=Tr0ub4dor&3xK!\n" * 1000
    keywords = KeywordMatcher([(1, 1, "project falcon")])
    regexes = RegexMatcher([(1, 1, r"ACME-\d{6}"), (1, 2, r"\Apassword")])
    folds = _counting(monkeypatch, kw, "fold")
    sets = _counting(monkeypatch, rx, "set_matches")  # the regex watches' and the secret detectors'
    for run in (
        lambda d: keywords.find(text, d),
        lambda d: regexes.find(text, d),
        lambda d: find_secrets(text, d),
    ):
        deadline = _expired()
        assert run(deadline) == []
        assert deadline.exceeded
    assert folds[0] == sets[0] == 0
    # with time left, the same calls find everything (the deadline is what stopped them)
    assert keywords.find(text, Deadline.after(60)) and find_secrets(text, Deadline.after(60))
    assert [h.watch_id for h in regexes.find(text, Deadline.after(60))] == [1, 2]


def test_a_stage_stops_between_blocks_when_the_deadline_passes() -> None:
    filler = ("x" * 99 + "\n") * (3 * BLOCK_CHARS // 100)
    text = "project falcon ACME-123456\n" + filler + "late marker ACME-999999 password=Tr0ub4dor&3xK!\n"
    deadline = _expires_after(1)  # the first block is read, the next look finds the time gone
    assert [
        h.line for h in KeywordMatcher([(1, 1, "project falcon"), (1, 2, "late marker")]).find(text, deadline)
    ] == [1]
    assert deadline.exceeded
    deadline = _expires_after(1)
    hits = RegexMatcher([(1, 1, r"ACME-\d{6}"), (1, 2, r"ACME-9+")]).find(text, deadline)
    assert [(h.watch_id, h.line) for h in hits] == [(1, 1)] and deadline.exceeded
    deadline = _expires_after(1)
    assert find_secrets(text, deadline) == [] and deadline.exceeded
    assert not Deadline.after(60).exceeded


def test_detector_with_an_expired_deadline_is_partial(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.settings import load_settings
    from pipelines.detection.engine import Detector

    assert cli("tenant", "add", "acme", "--domain", "acme.example").code == 0
    assert cli("watch", "add", "--tenant", "acme", "--keyword", "project falcon").code == 0
    assert cli("watch", "add", "--tenant", "acme", "--regex", r"ACME-\d{6}").code == 0
    settings = load_settings()
    detector = Detector.from_database(open_database(settings), load_or_create_key(settings.key_path))
    text = "mail a@acme.example\nproject falcon ACME-123456 password=Tr0ub4dor&3xK!\n" * 100
    full = detector.detect(text)
    assert not full.partial and {f.kind for f in full.findings} >= {"keyword", "regex", "secret", "domain"}
    folds = _counting(monkeypatch, kw, "fold")
    sets = _counting(monkeypatch, rx, "set_matches")
    cut = detector.detect(text, deadline=_expired())
    assert cut.partial
    assert not {f.kind for f in cut.findings} & {"keyword", "regex", "secret"}
    assert folds[0] == sets[0] == 0


# --------------------------------------------------------------------------- one Set pass for two stages


class _NoRecords:
    def lookup(self, hashes: Any) -> list[Any]:
        return []


def _detector(patterns: list[str]) -> Any:
    from pipelines.detection.engine import Detector, WatchSnapshot

    snapshot = WatchSnapshot(
        tenants={1: "acme", 2: "globex"},
        domains=[(1, "acme.example", 100), (2, "globex.example", 101)],
        regexes=[(1 + i % 2, 10 + i, p) for i, p in enumerate(patterns)],
    )
    return Detector(b"k" * 32, _NoRecords(), snapshot)


def test_split_block_matches_numbers_each_stage_from_zero() -> None:
    blocks = [(1, 0, b"a\n", [0, 3, 5]), (2, 2, b"b\n", [4]), (3, 4, b"c", [1])]
    low, high = rx.split_block_matches(blocks, 4)
    assert low == [(1, 0, b"a\n", [0, 3]), (3, 4, b"c", [1])]
    assert high == [(1, 0, b"a\n", [1]), (2, 2, b"b\n", [0])]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_texts,
    chosen=st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=6, unique=True),
    block=_block_sizes,
)
def test_one_set_pass_for_regexes_and_secrets_finds_what_two_passes_find(
    text: str, chosen: list[str], block: int
) -> None:
    """The detector reads a posting naming a watched domain with one Set of the secret detectors'
    patterns and the regex watches': the same findings as each stage's own pass."""
    text = "mail ops@acme.example\n" + text
    chosen = list(dict.fromkeys([r"x\s*y", *chosen]))  # one whole-text pattern at least: a shared Set
    shared = _detector(chosen)
    alone = _detector(chosen)
    assert shared._shared_sets is not None
    alone._shared_sets = None
    with mock.patch.object(rx, "BLOCK_CHARS", block):
        passes = [0]
        real = rx.block_matches

        def counted(*args: Any, **kwargs: Any) -> Any:
            passes[0] += 1
            return real(*args, **kwargs)

        with mock.patch("pipelines.detection.engine.block_matches", counted):
            got = shared.detect(text).findings
        assert passes[0] == 1
        assert got == alone.detect(text).findings


def test_the_shared_pass_finds_both_stages_findings() -> None:
    text = "ops@acme.example\nticket ACME-123456 and GITHUB_TOKEN=ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5\n"
    found = _detector([r"ACME-\d{6}"]).detect(text).findings
    assert {(f.kind, f.line) for f in found if f.kind in {"regex", "secret"}} == {("regex", 2), ("secret", 2)}
    # without a watched domain named, the secrets are not read, and the regex watch reads alone
    alone = _detector([r"ACME-\d{6}"]).detect(text.replace("acme.example", "other.example")).findings
    assert {f.kind for f in alone} == {"regex"}
