"""Domain watches list only the lines that can add a finding, and find exactly what listing every
line with an '@' found.

Why: a Chinese dump has an '@' on most lines (Telegram handles, addresses beside Chinese names); listing
the candidates of every such line cost more than the rest of the scan. The engine now lists the lines
naming a watched domain, and of the other lines only those where an address's domain may be written
with non-ASCII characters, in growing batches until every watched domain has its first address. The
reference below is the engine's former selection (every non-ASCII line with an '@', all listed at once),
with the line of an '@' taken from the text itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.detection.engine import Detector, Hit, WatchSnapshot, _domain_needles
from pipelines.detection.extract import Candidate
from pipelines.detection.fastscan import candidates_on_lines
from pipelines.detection.lines import LineIndex


class NoRecords:
    """A tenant registry with no records: these tests are about domain watches only."""

    def lookup(self, hashes: Sequence[str]) -> list[Hit]:
        return []


def _detector(domains: list[tuple[int, str, int]]) -> Detector:
    snapshot = WatchSnapshot(tenants={1: "acme", 2: "tencent"}, regions=("CN",), domains=domains)
    return Detector(bytes(32), NoRecords(), snapshot)


def _reference_candidates(detector: Detector, text: str) -> list[Candidate]:
    """The former `_domain_candidates`: lines naming a domain, and every non-ASCII line with an '@'."""
    lowered = text.lower()
    index = LineIndex(lowered)
    numbers: set[int] = set()
    for needle in _domain_needles(d for _, d, _ in detector.snapshot.domains):
        pos = lowered.find(needle)
        while pos >= 0:
            numbers.add(index.line_of(pos))
            pos = lowered.find(needle, pos + len(needle))
    if not text.isascii():
        text_index = LineIndex(text)  # offsets in `text` (lower() may lengthen it: 'İ' is two characters)
        pos = text.find("@")
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            if not text[start:end].isascii():
                numbers.add(text_index.line_of(pos))
            pos = text.find("@", end)
    return [c for c in candidates_on_lines(text, numbers, ("CN",)) if c.field_type == "email"]


DOMAINS = [(1, "acme.example", 11), (2, "qq.com", 21), (1, "bücher.example", 12)]
PIECES = [
    "张伟 13800138000 ",
    "TG@seller42 ",
    "【出售】 需要的私聊 ",
    "wang.wei@qq.com",
    "li@163.com",
    "ops@acme.example",
    "ops@mail.acme.example",
    "ｏｐｓ＠ａｃｍｅ．ｅｘａｍｐｌｅ",  # full-width: folds to a watched domain
    "ops@ａｃｍｅ.example",
    "x@bücher.example",
    "x@xn--bcher-kva.example",
    "boss@ＱＱ.com",
    '{"email": "a\\u0040acme.example", "name": "李四"}',
    '{"email": "\\u0062@acme.example", "name": "李四"}',
    "INSERT INTO t VALUES ('王五','it\\'s@acme.example');",
    "a@b.com，电话",
    "İİİ ",
    "wang@qq.com:pw acme.example",
    "，",
    " ",
    ":",
    "\n",
    "\n",
    "é",
]
texts = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3, unique=True))
def test_domain_findings_equal_the_listing_of_every_line_with_an_at(
    text: str, domains: list[tuple[int, str, int]]
) -> None:
    detector = _detector(domains)
    ours = detector._domains(detector._domain_candidates(text, 30.0), text)
    reference = detector._domains(_reference_candidates(detector, text), text)
    assert ours == reference


def test_a_chinese_dump_of_handles_lists_no_line() -> None:
    text = "\n".join(f"【出售】 姓名：张伟 电话：138001380{i:02d} TG@seller{i}" for i in range(500))
    detector = _detector([(1, "acme.example", 11)])
    assert detector._domain_candidates(text, 30.0) == []


def test_full_width_address_on_a_chinese_line_is_found() -> None:
    text = "TG@seller1 广告\n" * 50 + "联系 ｏｐｓ＠ａｃｍｅ．ｅｘａｍｐｌｅ TG@x 中文\n"
    detector = _detector([(1, "acme.example", 11)])
    (finding,) = detector._domains(detector._domain_candidates(text, 30.0), text)
    assert finding.line == 51 and finding.watch == "acme.example"


def test_listing_stops_once_every_watched_domain_has_an_address() -> None:
    rows = [f"user{i}@qq.com:pass{i}" for i in range(5000)]
    text = "\n".join(rows)
    detector = _detector([(2, "qq.com", 21)])
    listed = detector._domain_candidates(text, 30.0)
    assert listed and len(listed) < 100  # the first batch only, not 5,000 lines
    (finding,) = detector._domains(listed, text)
    assert finding.line == 1


def test_a_dump_on_one_watched_domain_is_read_one_batch_deep_while_another_is_never_found() -> None:
    text = "\n".join(f"user{i}@qq.com:pass{i} 张伟" for i in range(20_000))
    detector = _detector([(2, "qq.com", 21), (1, "acme.example", 11)])
    listed = detector._domain_candidates(text, 30.0)
    assert 0 < len(listed) <= 64
    (finding,) = detector._domains(listed, text)
    assert finding.watch == "qq.com" and finding.line == 1


def test_a_watch_reads_past_its_first_batch_until_its_first_address() -> None:
    text = (
        "see acme.example for details 中文\n" * 300 + "x\nleak ops@acme.example:pw\n" + "ops2@acme.example\n"
    )
    detector = _detector([(1, "acme.example", 11), (2, "qq.com", 21)])
    (finding,) = detector._domains(detector._domain_candidates(text, 30.0), text)
    assert finding.line == 302
    assert [finding] == detector._domains(_reference_candidates(detector, text), text)


def test_a_unicode_host_after_characters_that_lengthen_when_lowered() -> None:
    text = "İstanbul İzmir TG@x\n" * 3 + "联系 ｏｐｓ＠ａｃｍｅ．ｅｘａｍｐｌｅ TG@y 中文\n"
    detector = _detector([(1, "acme.example", 11)])
    (finding,) = detector._domains(detector._domain_candidates(text, 30.0), text)
    assert finding.line == 4
