"""The crawl's search indexing stays cheap without changing what is indexed.

- `extract_selectors` scans with rewritten patterns (`_*_SCAN`) and caches normalised values: it must find
  exactly what the readable patterns (`_EMAIL`, `_DOMAIN`...) and the per-match normalisation find.
- `tokenize` takes a one-call path for text without CJK: same tokens as the per-match loop.
- A crawl's postings are written in batches (one writer per batch, not per posting; 200 postings, then
  each batch twice its predecessor up to 1,000, or what waited 10 s), each by one indexing thread (one
  segment per commit), and the process hands freed memory back after each batch.
"""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.db import open_database
from core.models import Source
from core.posting import PostingDraft
from core.search import SearchDoc, SearchQuery, base, open_backend
from core.search.cjk import CJK_RANGES, MAX_TOKEN_CHARS, tokenize
from core.search.tantivy_backend import TantivyBackend
from core.settings import Settings
from pipelines import search_index
from pipelines.search_index import SearchIndexer, release_free_memory

# --------------------------------------------------------------------------- reference implementations


def _reference_luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _reference_card(value: str) -> str | None:
    digits = re.sub(r"[ -]", "", value.strip())
    if 13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit() and _reference_luhn(digits):
        return digits
    return None


def reference_selectors(text: str) -> set[str]:
    """extract_selectors as first written: the readable patterns, every match normalised in turn."""
    out: set[str] = set()
    if "@" in text:
        for m in base._EMAIL.finditer(text):
            email = base._email(m.group(0))
            if email:
                out.add(email)
                out.update(base._parents(email.rpartition("@")[2]))
    if "." in text:
        for m in base._DOMAIN.finditer(text):
            domain = base._domain(m.group(0))
            if domain:
                out.update(base._parents(domain))
        for m in base._IPV4.finditer(text):
            ip = base._ip(m.group(0))
            if ip:
                out.add(ip)
    if "::" in text or text.count(":") >= 7:
        for m in base._IPV6.finditer(text):
            candidate = m.group(0)
            if any(c != ":" for c in candidate):
                ip = base._ip(candidate)
                if ip and ":" in ip:
                    out.add(ip)
    for m in base._HASH.finditer(text):
        out.add(m.group(0).lower())
    if "1" in text or "3" in text or "bc1" in text.lower():
        for m in base._BTC_LEGACY.finditer(text):
            if base._base58check(m.group(0)):
                out.add(m.group(0))
        for m in base._BTC_BECH32.finditer(text):
            if m.group(0).islower() or m.group(0).isupper():
                out.add(m.group(0).lower())
    for m in base._CARD.finditer(text):
        card = _reference_card(m.group(0))
        if card:
            out.add(card)
    if "+" in text or "00" in text:
        for m in base._PHONE_INTL.finditer(text):
            groups = re.findall(r"\d+", m.group(1))
            for cut in range(len(groups), max(len(groups) - 3, 0), -1):
                terms = base._intl_phone("".join(groups[:cut]))
                if terms:
                    out.update(terms)
                    break
    for m in base._PHONE_NATIONAL.finditer(text):
        out.update(base._national_phone(m.group(1)))
    for m in base._CN_MOBILE.finditer(text):
        out.update(base._national_phone(m.group(0)))
    return out


_RUN = re.compile(rf"(?P<cjk>[{CJK_RANGES}]+)|(?P<word>[^\W_{CJK_RANGES}]+)")


def reference_tokenize(text: str) -> list[str]:
    folded = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    tokens: list[str] = []
    for m in _RUN.finditer(folded):
        cjk = m.group("cjk")
        if cjk is None:
            if len(m.group("word")) <= MAX_TOKEN_CHARS:
                tokens.append(m.group("word"))
        elif len(cjk) == 1:
            tokens.append(cjk)
        else:
            tokens.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
    return tokens


# --------------------------------------------------------------------------- generated text

# Pieces that make every kind of selector, near-misses, and the characters IGNORECASE treats specially
# (İ ı ſ K match [a-z] case-insensitively: the scan patterns spell them out).
PIECES = [
    *"0123456789abcdefABCDEFxyzXYZkKsSbBcC.-@+:()_ \n\t,;/#'\"",
    "\u0130",
    "\u0131",
    "\u017f",
    "\u212a",
    "客",
    "户数据",
    "\u0663",
    "０",
    "00",
    "bc1",
    "BC1",
    "+86 ",
    "0086 ",
    "138",
    "0013",
    "::",
    "@acme.com",
    "@mail.例子.中国",
    ".com",
    ".cn",
    "www.",
    "192.168.",
    "2001:db8:",
    "1:2:3:4:",
    "4111 1111 1111 1111",
    "6212-3456-7890-1232",
    "+1 (415) 555-2671",
    "(010) 6552 1234",
    "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "x" * 30,
    "a1b2" * 9,
]

REALISTIC = [
    "alice.w@acme.com:Passw0rd!,+86 138 0013 8000,4111 1111 1111 1111, 10.0.0.1 vpn.acme.com",
    "INSERT INTO users VALUES (7,'bob@globex.cn','d41d8cd98f00b204e9800998ecf8427e','2001:db8::42');",
    '{"email":"carol@initech.io","ip":"192.168.7.9","phone":"0086 10 6552 1234","card":"6212345678901232"}',
    "客户数据 出售 联系 13800138000 微信 acme客户 邮箱 zhang.wei@例子.中国 BTC 1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "2024-03-01T12:00:00Z GET /login from fe80::1%eth0 ::ffff:10.0.0.1 user=dave@ACME.COM tel (415) 555-2671",
    "wallet bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ sha1 "
    "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709 +44 20 7946 0958 ext 12 00 33 1 42 68 53 00",
    "::1:2:3:4:5:6:7 1:2:3:4:5:6:7:8 1:: fe80::1:2:3:4:5:6 ::2:3:4:5:6:7:8 a:b:c:d:e:f:0:1:2 :::: 1:2",
]


def generated(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 80))) for _ in range(count)]


# --------------------------------------------------------------------------- selectors and tokens


SCANNERS = [
    "_EMAIL",
    "_DOMAIN",
    "_IPV4",
    "_IPV6",
    "_HASH",
    "_CARD",
    "_BTC_LEGACY",
    "_BTC_BECH32",
    "_PHONE_INTL",
    "_PHONE_NATIONAL",
    "_CN_MOBILE",
]


@pytest.mark.parametrize("name", SCANNERS)
def test_each_scan_pattern_finds_what_the_readable_pattern_finds(name: str) -> None:
    readable, scan = getattr(base, name), getattr(base, name + "_SCAN")
    for text in REALISTIC + generated(3000, SCANNERS.index(name)):
        assert [m.span() for m in scan.finditer(text)] == [m.span() for m in readable.finditer(text)], text


def test_scan_patterns_spell_out_what_ignorecase_adds_to_ascii_letters() -> None:
    """Every character the IGNORECASE classes match, the case-sensitive scan classes match too."""
    letters = [chr(c) for c in range(0x250) if re.fullmatch("[a-z]", chr(c), re.IGNORECASE)]
    letters += [chr(c) for c in (0x212A,) if re.fullmatch("[a-z]", chr(c), re.IGNORECASE)]
    assert {"\u0130", "\u0131", "\u017f", "\u212a"} <= set(letters)
    for ch in letters:
        assert re.fullmatch(f"[{base._AZ}]", ch), ch


def test_extract_selectors_equals_the_reference_on_realistic_and_generated_text() -> None:
    texts = REALISTIC + generated(4000, 7) + ["\n".join(generated(200, 8))]
    found = 0
    for text in texts:
        expected = reference_selectors(text)
        assert base.extract_selectors(text) == expected, text
        assert base.extract_selectors(text) == expected, text  # the second time from the caches
        found += len(expected)
    assert found > 2000  # the texts really hold selectors of every kind
    kinds = {base.is_selector(t) for text in REALISTIC for t in reference_selectors(text)}
    assert {"email", "domain", "ipv4", "ipv6", "md5", "sha1", "btc", "card", "phone"} <= kinds


def test_luhn_agrees_with_the_digit_loop() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19)))
        assert base._luhn(digits) == _reference_luhn(digits), digits


def test_tokenize_equals_the_reference() -> None:
    pieces = [
        *"abcXYZ09_ -.\n",
        "客",
        "户",
        "数据",
        "ｱｲ",
        "ＡＣＭＥ",
        "한국",
        "\U00020000",
        "ß",
        "İ",
        "ﬁ",
        "①",
    ]
    pieces += ["x" * (MAX_TOKEN_CHARS + 1), "y" * MAX_TOKEN_CHARS, "\u0301", "ㄱ"]
    rng = random.Random(5)
    texts = REALISTIC + ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    for text in texts:
        assert tokenize(text) == reference_tokenize(text), text


# --------------------------------------------------------------------------- batches and writers


def _doc(i: int, text: str) -> SearchDoc:
    when = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=i)
    return SearchDoc(
        i, f"https://paste.example/{i}", "pastes", "pastebin", f"paste {i}", None, None, when, text
    )


def test_a_crawl_sized_batch_is_one_segment_written_by_one_thread(tmp_path: Path) -> None:
    """Tantivy writes one segment per indexing thread per commit: a batch of a few hundred postings with
    one thread is one segment (with the default threads, one per core, each to be merged later)."""
    backend = TantivyBackend(tmp_path / "search")
    docs = [_doc(i, f"row {i} user{i}@acme.com 客户数据 {'lorem ipsum ' * 200}") for i in range(1, 401)]
    assert backend.index(docs) == 400
    backend._index.reload()
    assert backend._index.searcher().num_segments == 1
    assert backend.search(SearchQuery("user17@acme.com")).total == 1
    assert backend.search(SearchQuery("客户数据")).total == 400


class _Home:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(home=tmp_path / "home")
        self.db = open_database(self.settings)
        with self.db.session() as sess:
            sess.add(Source(name="pastes", kind="pastebin", url="https://paste.example", schedule=None))


def _draft(i: int) -> PostingDraft:
    return PostingDraft(
        source="pastes",
        url=f"https://paste.example/{i}",
        text=f"posting {i} contact seller{i}@globex.cn or +86 138 0013 {i:04d}; 客户数据 {i}",
        title=f"paste {i}",
        fetched=datetime(2024, 3, 1, tzinfo=UTC) + timedelta(seconds=i),
    )


def test_a_crawl_writes_the_index_once_per_batch_not_per_posting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _Home(tmp_path)
    opened: list[int] = []
    real_writer = TantivyBackend._writer

    def counting_writer(self: TantivyBackend, small: bool = False):  # type: ignore[no-untyped-def]
        opened.append(1)
        return real_writer(self, small)

    monkeypatch.setattr(TantivyBackend, "_writer", counting_writer)
    indexer = SearchIndexer(home.settings, home.db)  # the crawl's defaults
    sizes: list[int] = []
    for i in range(1, 2951):
        before = indexer.commits
        indexer.add(i, _draft(i))
        if indexer.commits > before:
            sizes.append(i - sum(sizes))
    indexer.flush()  # the crawl's close
    sizes.append(2950 - sum(sizes))
    # The first batch is 200 postings; each later one twice its predecessor, up to 1,000.
    assert sizes == [200, 400, 800, 1000, 550]
    assert indexer.commits == len(opened) == 5
    assert indexer.failed == 0
    backend = open_backend(home.settings)
    assert backend.count() == 2950
    assert backend.search(SearchQuery("seller321@globex.cn")).total == 1
    assert backend.search(SearchQuery("客户数据")).total == 2950


def test_a_batch_is_still_cut_when_its_oldest_posting_waited_max_wait_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _Home(tmp_path)
    now = [1000.0]
    monkeypatch.setattr(search_index.time, "monotonic", lambda: now[0])
    indexer = SearchIndexer(home.settings, home.db)
    for i in range(1, 201):
        indexer.add(i, _draft(i))
    assert indexer.commits == 1 and indexer.limit == 400
    for i in range(201, 231):
        now[0] += 0.5  # a slow source: 30 postings in 15 s
        indexer.add(i, _draft(i))
    assert indexer.commits == 2  # cut at 10 s, not at 400 postings
    assert open_backend(home.settings).count() == 221


def test_a_batch_is_also_cut_by_the_text_it_holds(tmp_path: Path) -> None:
    home = _Home(tmp_path)
    indexer = SearchIndexer(home.settings, home.db, max_bytes=500)
    for i in range(1, 31):
        indexer.add(i, _draft(i))  # about 70 characters each: a batch every 8
    indexer.flush()
    assert indexer.commits == 4
    assert open_backend(home.settings).count() == 30


def test_each_batch_hands_freed_memory_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert release_free_memory()  # glibc on this machine: malloc_trim is there
    trims: list[int] = []
    real = search_index.release_free_memory
    monkeypatch.setattr(search_index, "release_free_memory", lambda: trims.append(1) or real())
    home = _Home(tmp_path)
    indexer = SearchIndexer(home.settings, home.db, batch=10, max_batch=10)
    for i in range(1, 26):
        indexer.add(i, _draft(i))
    indexer.flush()
    assert indexer.commits == len(trims) == 3
