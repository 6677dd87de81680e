"""Candidate extraction: finds planted values in real leak formats, survives hostile input."""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import canonicalize
from pipelines.detection.extract import Candidate, extract_candidates


def _cn_id(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return first17 + "10X98765432"[sum(w * int(c) for w, c in zip(weights, first17, strict=True)) % 11]


CN_ID = _cn_id("11010519491231002")  # 11010519491231002X
CN_ID_2 = _cn_id("44030419851105123")
CARD = "4111111111111111"
UNIONPAY = "6212345678901232"


def found(text: str, regions: tuple[str, ...] = ("CN",)) -> set[tuple[str, str]]:
    return {(c.field_type, c.canonical) for c in extract_candidates(text, regions)}


def lines_of(text: str, field_type: str, canonical: str) -> list[int]:
    return sorted(
        c.line
        for c in extract_candidates(text, ("CN", "US"))
        if (c.field_type, c.canonical) == (field_type, canonical)
    )


# --------------------------------------------------------------------------- formats


def test_combo_list() -> None:
    text = "john.doe@Acme.com:hunter2\nalice@example.org;Passw0rd!\n+8613800138000|qwerty123\n"
    got = found(text)
    assert ("email", "john.doe@acme.com") in got
    assert ("email", "alice@example.org") in got
    assert ("phone", "+8613800138000") in got
    assert ("username", "hunter2") in got  # the other field of a combo line is a generic value
    assert lines_of(text, "email", "alice@example.org") == [2]


def test_csv_with_chinese_headers() -> None:
    text = (
        "姓名,手机号,身份证号,邮箱,银行卡\n"
        f"张三,13800138000,{CN_ID},zhangsan@qq.com,{UNIONPAY}\n"
        f"李四,139 1234 5678,{CN_ID_2.lower()},lisi@163.com,4111-1111-1111-1111\n"
    )
    got = found(text)
    for expected in [
        ("name", "张三"),
        ("phone", "+8613800138000"),
        ("cn_id", CN_ID),
        ("email", "zhangsan@qq.com"),
        ("card", UNIONPAY),
        ("name", "李四"),
        ("phone", "+8613912345678"),
        ("cn_id", CN_ID_2),
        ("card", CARD),
    ]:
        assert expected in got, expected
    assert lines_of(text, "cn_id", CN_ID) == [2]


def test_sql_insert_dump() -> None:
    text = (
        "INSERT INTO `users` VALUES (1,'Jane Roe','jane@x.org','+44 20 7946 0958','O''Brien'),"
        "(2,'bob_smith','4111 1111 1111 1111','123-45-6789','sk_live_AbCdEf0123456789');\n"
    )
    got = found(text)
    assert {
        ("name", "jane roe"),
        ("email", "jane@x.org"),
        ("phone", "+442079460958"),
        ("name", "obrien"),
        ("username", "bob_smith"),
        ("card", CARD),
        ("ssn", "123456789"),
        ("api_key", "sk_live_AbCdEf0123456789"),
    } <= got


def test_json_lines() -> None:
    rows = [
        {"email": "A@B.io", "name": "李四", "phone": 13900139000, "card": UNIONPAY},
        {"user": {"login": "neo_1999", "ids": [CN_ID]}, "dob": "1999-03-31"},
    ]
    text = "\n".join(json.dumps(row) for row in rows)  # ensure_ascii: 李四 is escaped in the raw line
    got = found(text)
    assert {
        ("email", "a@b.io"),
        ("name", "李四"),
        ("phone", "+8613900139000"),
        ("card", UNIONPAY),
        ("username", "neo_1999"),
        ("cn_id", CN_ID),
        ("dob", "1999-03-31"),
    } <= got


def test_key_value_log() -> None:
    text = (
        '2024-05-01T10:00:00Z INFO login user=alice email="Alice@Corp.com" ip=10.1.2.3 '
        "token=ghp_abcdefghijklmnop1234 phone=+1-650-253-0000\n"
    )
    got = found(text, ())
    assert {
        ("username", "alice"),
        ("email", "alice@corp.com"),
        ("ip", "10.1.2.3"),
        ("api_key", "ghp_abcdefghijklmnop1234"),
        ("phone", "+16502530000"),
    } <= got


def test_chinese_chat_ad() -> None:
    text = f"出售资料 姓名：张三 电话：13800138000 身份证：{CN_ID} 生日：1990年1月2日"
    got = found(text)
    assert {
        ("name", "张三"),
        ("phone", "+8613800138000"),
        ("cn_id", CN_ID),
        ("dob", "1990-01-02"),
    } <= got


def test_iban_and_international_phones_without_regions() -> None:
    text = "pay to GB82 WEST 1234 5698 7654 32 today, call +49 (0)30 901820 or 0086 138 0013 8000"
    got = found(text, ())
    assert {("iban", "GB82WEST12345698765432"), ("phone", "+4930901820"), ("phone", "+8613800138000")} <= got


def test_regions_read_national_numbers() -> None:
    text = "office: (650) 253-0000 / mobile 138 0013 8000"
    assert ("phone", "+16502530000") not in found(text, ())
    assert ("phone", "+16502530000") in found(text, ("US",))
    assert ("phone", "+8613800138000") in found(text, ("CN", "US"))


# --------------------------------------------------------------------------- precision


def test_luhn_invalid_number_is_not_a_card() -> None:
    text = "card 4111 1111 1111 1112 and 4111111111111112 exp 12/25"
    assert not [c for c in extract_candidates(text, ("CN", "US")) if c.field_type == "card"]


def test_bad_checksum_id_and_short_phone_are_not_candidates() -> None:
    text = f"身份证：{CN_ID[:-1]}1 电话：1380013800"
    got = found(text)
    assert not [pair for pair in got if pair[0] in ("cn_id", "phone")]


def test_ssn_only_in_dashed_form() -> None:
    assert ("ssn", "123456789") in found("SSN: 123-45-6789", ("US",))
    assert ("ssn", "123456789") not in found("order 123456789 shipped", ("US",))


def test_candidates_are_deduplicated_per_line_and_keep_line_numbers() -> None:
    text = "a@b.io a@b.io A@B.IO\n\nx\na@b.io\n"
    emails = [c for c in extract_candidates(text) if c.field_type == "email"]
    assert [(c.canonical, c.line) for c in emails] == [("a@b.io", 1), ("a@b.io", 4)]
    assert emails[0] == Candidate("email", "a@b.io", "a@b.io", 1)


def test_every_candidate_is_canonical() -> None:
    text = (
        f"张三,13800138000,{CN_ID},zhangsan@qq.com,{UNIONPAY},1990/1/2,neo_1999\nGB82 WEST 1234 5698 7654 32"
    )
    for c in extract_candidates(text, ("CN",)):
        assert canonicalize(c.field_type, c.canonical, "CN") == c.canonical, c


# --------------------------------------------------------------------------- hostile input


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=2000))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    for candidate in extract_candidates(text, ("CN", "US", "XX")):
        assert candidate.line >= 1


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=4000), encoding=st.sampled_from(["utf-8", "latin-1", "gb18030", "utf-16"]))
def test_never_raises_on_decoded_binary(data: bytes, encoding: str) -> None:
    text = data.decode(encoding, errors="surrogateescape" if encoding == "utf-8" else "replace")
    list(extract_candidates(text, ("CN",)))


def test_max_bytes_truncates() -> None:
    text = "x" * 100 + " late@example.com"
    assert ("email", "late@example.com") not in found_limited(text, 100)
    assert ("email", "late@example.com") in found_limited(text, 1000)


def found_limited(text: str, max_bytes: int) -> set[tuple[str, str]]:
    return {(c.field_type, c.canonical) for c in extract_candidates(text, max_bytes=max_bytes)}


def test_deadline_stops_early() -> None:
    text = "\n".join(f"user{i}@example.com:pass{i}" for i in range(200_000))
    started = time.monotonic()
    got = list(extract_candidates(text, deadline_s=0.2))
    assert time.monotonic() - started < 5
    assert got and len(got) < 200_000


def _timed(text: str) -> float:
    started = time.monotonic()
    for _ in extract_candidates(text, ("CN", "US")):
        pass
    return time.monotonic() - started


@pytest.mark.parametrize(
    "unit",
    [
        "A",  # one 50 MB token
        "1 ",  # one endless digit run
        "a@",  # '@' everywhere
        "+86 138 0013 8000 john@x.io,",  # real values, repeated without a newline
        "a=",  # labels everywhere
        "\\'",  # escaped quotes in an SQL dump: a naive string regex goes quadratic
    ],
)
def test_50mb_single_line_is_bounded(unit: str) -> None:
    text = ("INSERT INTO t VALUES ('" if "'" in unit else "") + unit * (50_000_000 // len(unit))
    assert _timed(text) < 20  # a limit check, not a benchmark


def test_50mb_binary_junk_line_is_bounded() -> None:
    text = os.urandom(5_000_000).decode("latin-1").replace("\n", " ") * 10
    assert _timed(text) < 20


def test_deeply_nested_json_is_bounded() -> None:
    depth = 5_000_000
    assert _timed("[" * depth + "]" * depth) < 20
    small = '{"a":' * 100_000 + '"x@y.io"' + "}" * 100_000  # parses only up to the recursion limit
    assert _timed(small) < 20
    nested_ok = json.dumps({"a": [{"b": [{"email": "deep@nest.io"}]}]})
    assert ("email", "deep@nest.io") in found(nested_ok)


def test_what_a_line_yields_does_not_depend_on_what_was_read_before() -> None:
    """Cached digit runs are charged their full work cost, so the budget runs out at the same place."""
    from pipelines.detection import extract as ex

    line = "1990.05.12 123-45-0000 1990.05.12\t12/13/1990\t" * 1023
    ex._RUN_CACHE.clear()
    cold = {(c.field_type, c.canonical) for c in ex.extract_candidates(line, ("GB", "DE"))}
    warm = {(c.field_type, c.canonical) for c in ex.extract_candidates(line, ("GB", "DE"))}
    assert cold == warm
