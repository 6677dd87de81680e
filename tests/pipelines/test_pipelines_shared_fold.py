"""Stages given the posting folded (keywords, documents) or encoded (regexes, secrets) once find what they
find preparing it themselves.

Why: the engine folds a posting once (NFKC + case-fold, ``core.canonical.fold``) and hands the folded
text to both stages; the keyword stage used to fold 1 MB blocks one at a time. Folding is local to a
line, so both ways must give the same hits, lines and excerpts; every text here is checked both ways,
with the characters whose folding changes the length (ß, ﬁ, İ), full-width forms, combining marks,
Chinese, and blocks larger than the stages' 1 MB blocks.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import fold
from pipelines.detection import keywords as kw
from pipelines.detection.documents import DocumentMatcher, fingerprints
from pipelines.detection.keywords import KeywordMatcher
from pipelines.detection.lines import Deadline

KEYWORDS = [
    (1, 1, "Project Falcon"),
    (1, 2, "数据泄露"),
    (2, 3, "straße"),
    (2, 4, "acme"),
    (3, 5, "ｉｎｉｔｅｃｈ"),
]
MATCHER = KeywordMatcher(KEYWORDS)
PIECES = st.one_of(
    st.sampled_from(["project falcon", "PROJECT  FALCON", "Project Falcon", "数据泄露", "STRASSE", "straße"]),
    st.sampled_from(
        ["acme", "ACME", "acmeplex", "xacme", "ＡＣＭＥ", "initech", "ﬁ", "İ", "é\u0301", "\n", " "]
    ),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40))
def test_keywords_on_the_folded_text_equal_keywords_folding_blocks(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert MATCHER.find(text, folded=fold(text[: kw.MAX_TEXT_CHARS])) == MATCHER.find(text)


def test_keywords_across_blocks_of_the_folded_text(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(kw, "BLOCK_CHARS", 64)  # many blocks: lines and excerpts cross block cuts
    text = "\n".join(
        f"line {i} ＳＴＲＡẞＥ ﬁle" if i % 7 else f"数据 {i} ACME and project falcon {i}" for i in range(400)
    )
    text += "\nthe end: straße, 数据泄露, ｉｎｉｔｅｃｈ\n"
    folded = fold(text)
    assert len(folded) != len(text)
    hits = MATCHER.find(text, Deadline.after(10), folded=folded)
    assert hits == MATCHER.find(text, Deadline.after(10))
    assert {h.keyword for h in hits} == {k for _, _, k in KEYWORDS}


def test_keywords_fall_back_when_the_folded_text_has_other_lines() -> None:
    text = "a\nacme\n"
    assert MATCHER.find(text, folded="acme") == MATCHER.find(text)  # not this text's fold: ignored
    assert [h.line for h in MATCHER.find(text, folded="acme")] == [2]


DOC = (
    "Project Falcon quarterly plan: the acquisition of the northern distribution network closes in the "
    "third quarter; 猎鹰项目季度计划：北方分销网络的收购将在第三季度完成，董事会批准了四千八百万的整合预算。"
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.just(DOC), st.just(DOC.upper()), PIECES), max_size=20))
def test_documents_on_the_folded_text_equal_documents_folding_it(pieces: list[str]) -> None:
    key = bytes(range(32))
    matcher = DocumentMatcher([(1, 7, "plan", fingerprints(DOC, key=key))])
    text = "".join(pieces)
    assert matcher.find(text, key=key, folded=fold(text)) == matcher.find(text, key=key)


SECRETISH = st.sampled_from(
    [
        "GITHUB_TOKEN=ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
        "password: hunter2hunter2",
        "AKIAIOSFODNN7EXAMPLE",
        "ACME-123456",
        "status=500 bytes=512 ",
        "\r\n",
        "\ud800",
        "数据",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(SECRETISH, PIECES), max_size=30))
def test_regexes_and_secrets_on_the_encoded_text_equal_encoding_it(pieces: list[str]) -> None:
    from pipelines.detection.regexes import RegexMatcher, encode_text
    from pipelines.detection.secrets import find_secrets

    text = "".join(pieces)
    encoded = encode_text(text)
    matcher = RegexMatcher([(1, 1, r"ACME-\d{6}"), (2, 2, r"status=500 bytes=\d{3}\b"), (2, 3, r"^password")])
    assert matcher.find(text, encoded=encoded) == matcher.find(text)
    assert find_secrets(text, encoded=encoded) == find_secrets(text)
