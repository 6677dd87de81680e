"""Native hashed scan (fastscan + _scanner) against extract.py: the same (keyed hash, line) pairs, always.

The C scanner claims to produce exactly extract.py's candidates, hashed, for lines of ASCII, CJK
ideographs and a few CJK punctuation marks, and to hand every other line back to extract.py. These
tests compare the two on hand-written lines of every shape, on generated lines built from interesting
pieces, on arbitrary unicode, and on hostile input; they also check the native HMAC and the CN mobile
prefix table. A mismatch names the line and the differing (type, canonical) items.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import importlib
import json
import os
import random
import time
from collections import defaultdict

import numpy as np
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import FIELD_TYPES, canonicalize, cn_id_check_digit, fold, luhn_ok
from pipelines.detection import extract as ex
from pipelines.detection import fastscan
from pipelines.detection.extract import extract_candidates
from pipelines.detection.fastscan import HashedScanner

pytestmark = pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")

KEY = bytes(range(32))
REGION_SETS: list[tuple[str, ...]] = [("CN",), ("US",), ("CN", "US"), ("GB", "DE"), ()]
Pair = tuple[bytes, int]


# --------------------------------------------------------------------------- helpers


def _digest(key: bytes, field_type: str, canonical: str) -> bytes:
    # surrogatepass: the scheme's encoding (core.hashing.keyed_hash); the same bytes as .encode() for every
    # str without lone surrogates, which only JSON escapes such as "\ud800" can put in a canonical form
    message = f"{field_type}\x00{canonical}".encode("utf-8", "surrogatepass")
    return hmac.digest(key, message, "sha256")[:16]


def _reference_candidates(text: str, regions: tuple[str, ...]) -> list[ex.Candidate]:
    return list(extract_candidates(text, regions, deadline_s=600))


def reference(text: str, regions: tuple[str, ...], key: bytes = KEY) -> set[Pair]:
    """extract.py's candidates, hashed: the set of (digest16, 1-based line)."""
    return {(_digest(key, c.field_type, c.canonical), c.line) for c in _reference_candidates(text, regions)}


@functools.lru_cache(maxsize=64)
def _scanner(key: bytes, regions: tuple[str, ...]) -> HashedScanner:
    # One scanner per (key, regions) reused across scans, as a worker does: the native caches carry over.
    return HashedScanner(key, regions)


def _pairs_of(scan: fastscan.HashedScan) -> set[Pair]:
    digests = scan.digests
    assert len(digests) % 16 == 0
    assert scan.pairs.dtype == np.uint32 and scan.pairs.ndim == 2 and scan.pairs.shape[1] == 2
    out = set()
    for idx, line in scan.pairs.tolist():
        assert 0 <= idx < len(digests) // 16
        out.add((digests[16 * idx : 16 * idx + 16], line))
    return out


def native(text: str, regions: tuple[str, ...], key: bytes = KEY, *, fresh: bool = False) -> set[Pair]:
    """HashedScanner(key, regions).scan(text), as the same set of (digest16, line)."""
    scanner = HashedScanner(key, regions) if fresh else _scanner(key, regions)
    assert scanner.native
    scan = scanner.scan(text, deadline_s=600)
    assert scan.partial is False
    return _pairs_of(scan)


def _guesses(line: str, key: bytes) -> dict[bytes, tuple[str, str]]:
    """(type, canonical) for digests extract.py might have produced on other readings of `line`: used only
    to name the items the native scanner produced and extract.py did not."""
    table: dict[bytes, tuple[str, str]] = {}

    def put(field_type: str, canonical: str | None) -> None:
        if canonical is not None:
            table.setdefault(_digest(key, field_type, canonical), (field_type, canonical))

    for regions in [*REGION_SETS, ("CN", "US", "GB", "DE", "JP", "FR")]:
        for c in _reference_candidates(line, regions):
            put(c.field_type, c.canonical)
    pieces = {line, line.strip()}
    for sep in ("\t", ",", ":", ";", "|", "=", " ", "'", '"', "，", "：", "；", "、"):
        pieces.update(p for p in line.split(sep) if p)
    if len(line) <= 160:
        for i in range(len(line)):
            for j in range(i + 1, min(len(line), i + 64) + 1):
                pieces.add(line[i:j])
    for piece in pieces:
        for value in {piece, piece.strip(), piece.strip().strip(ex._QUOTES).strip()}:
            if not value or len(value) > 1024:
                continue
            folded = fold(value)
            for field_type in FIELD_TYPES:
                put(field_type, value)
                put(field_type, folded)
                put(field_type, " ".join(folded.split()))
                for region in (None, "US", "CN", "GB", "DE"):
                    with contextlib.suppress(Exception):  # only naming items for a message
                        put(field_type, canonicalize(field_type, value, region))
    return table


def _describe(text: str, regions: tuple[str, ...], key: bytes, expected: set[Pair], got: set[Pair]) -> str:
    names = {
        _digest(key, c.field_type, c.canonical): (c.field_type, c.canonical)
        for c in _reference_candidates(text, regions)
    }
    lines = text.split("\n")
    missing: dict[int, list[bytes]] = defaultdict(list)
    extra: dict[int, list[bytes]] = defaultdict(list)
    for digest, number in expected - got:
        missing[number].append(digest)
    for digest, number in got - expected:
        extra[number].append(digest)
    out = [f"native != extract.py for regions={regions!r} on {len(lines)} line(s):"]
    for number in sorted(set(missing) | set(extra))[:6]:
        line = lines[number - 1].rstrip("\r") if 1 <= number <= len(lines) else "<no such line>"
        out.append(f"  line {number}: {line[:400]!r}{' ...' if len(line) > 400 else ''}")
        if missing[number]:
            items = sorted(names.get(d, ("?", d.hex())) for d in missing[number])
            out.append(f"    expected but not produced natively: {items[:20]!r}")
        if extra[number]:
            guesses = _guesses(line, key) if len(line) <= 2000 else {}
            items = sorted(guesses.get(d, ("<unknown>", d.hex())) for d in extra[number])
            out.append(f"    produced natively, not by extract.py: {items[:20]!r}")
    return "\n".join(out)


def _cold() -> None:
    """Empty extract.py's digit-run cache. A cached run costs 1 work unit instead of 1 + its phone parses,
    so on a line that exhausts its work budget extract.py finds more when the cache is warm: its output
    depends on what the process read before. Both sides start cold so they are compared on equal terms."""
    ex._RUN_CACHE.clear()


def assert_same(text: str, regions: tuple[str, ...], key: bytes = KEY, *, fresh: bool = False) -> None:
    _cold()
    expected = reference(text, regions, key)
    _cold()
    got = native(text, regions, key, fresh=fresh)
    if got != expected:
        pytest.fail(_describe(text, regions, key, expected, got), pytrace=False)


# --------------------------------------------------------------------------- values


def _cn_id(first17: str) -> str:
    return first17 + cn_id_check_digit(first17)


def _luhn(prefix: str) -> str:
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError


CN_ID = _cn_id("11010519491231002")  # ...X
CN_ID_2 = _cn_id("44030419851105123")
CN_ID_3 = _cn_id("32010219900512345")
CARD = "4111111111111111"
UNIONPAY = _luhn("621234567890123")
AMEX = "378282246310005"
IBAN_GB = "GB82WEST12345698765432"
IBAN_DE = "DE89370400440532013000"
IBAN_FR = "FR1420041010050500013M02606"
IBAN_GB_SPACED = "GB82 WEST 1234 5698 7654 32"


# --------------------------------------------------------------------------- hand-written examples

EXAMPLES: list[str] = [
    # combo lists
    "alice@example.com:hunter2",
    "bob.smith+tag@mail.example.co.uk:P@ssw0rd!",
    "ZHANG.San@QQ.COM;zs123456",
    "user@xn--fiqs8s.cn|passw0rd",
    "weird..dots@example.com:pw",
    ".lead@example.com:pw",
    "a@b.c:pw",
    "name@domain.c0m:pw",
    "x@sub-domain.example-site.org:long password with spaces",
    "user@邮箱.中国:pass1234",
    "user@example.com123 trailing",
    "first@example.com,second@example.org;third@example.net",
    "email:alice@example.com password:secret123",
    "@@@@example.com",
    "a" * 70 + "@example.com:pw",
    "li.lei@163.com----a123456----13800138000",
    # CSV / TSV with Chinese headers
    "姓名,电话,身份证号,地址",
    f"张三,13800138000,{CN_ID},北京市朝阳区建国路88号",
    f"李四,138-0013-8000,{CN_ID_2},上海市浦东新区",
    f"王五\t+86 138 0013 8000\t{CN_ID_3.lower()}\t广东省深圳市南山区",
    "id,name,email,phone,dob,card",
    f"1,John Smith,john.smith@example.com,(650) 253-0000,05/12/1990,{CARD}",
    f'2,"O\'Brien, Mary",mary@example.org,+44 20 7946 0958,12/05/1990,{UNIONPAY}',
    f"3;Hans Müller;hans@example.de;+49 30 901820;1990-05-12;{IBAN_DE}",
    f"4|Jean Dupont|jean@example.fr|+33 1 42 68 53 00|12 Jan 1990|{IBAN_FR}",
    "5,Lee,lee@example.com,0086 138 0013 8000,19900512,",
    "6,,,,,",
    "  7  ,  spaced  ,  fields  ",
    "uid\tusername\tpassword\temail",
    "1001\tdragon_slayer\tqwerty123\tdragon@example.com",
    # SQL INSERT dumps
    "INSERT INTO `users` VALUES (1,'alice','alice@example.com','13800138000','1990-05-12');",
    "insert into users (id, name, note) values (2, 'O''Brien', 'it''s fine');",
    "INSERT INTO t VALUES (3,'back\\'slash','张三','身份证：" + CN_ID + "');",
    "(4,'bob','bob@example.com','415-555-2671'),(5,'carol','carol@example.com','212 456 7890');",
    "INSERT INTO t VALUES ('unterminated, 'ok', 'x''y",
    "INSERT INTO t VALUES ('a\\\\', 'b')",
    "INSERT INTO t VALUES ('''', '''''', 'x')",
    "insert   into x values ('Zhang San', '1990年5月12日')",
    "INSERTINTO x values ('not sql', 'a')",
    "(1, 'paren start', 'bob@example.com')",
    # JSON lines: flat, nested, escapes, floats, duplicate keys
    '{"name": "张三", "phone": "13800138000", "id": "' + CN_ID + '"}',
    '{"name":"\\u4e2d\\u6587","email":"a@example.com","age":31}',
    '{"email": "bob@example.com", "score": 3.5, "ok": true, "x": null}',
    '{"email": "bob@example.com", "email": "carol@example.com"}',
    '{"user": {"name": "Alice Smith", "email": "alice@example.com"}, "tags": ["a", "b"]}',
    '[{"phone": "+86 138 0013 8000"}, {"phone": "+1 650 253 0000"}]',
    '["alice@example.com", 13800138000, 1.5e3, -0, null]',
    '{"note": "line\\nbreak", "tab": "a\\tb", "quote": "say \\"hi\\""}',
    '{"esc\\u0041key": "value one", "k": "v"}',
    '{"a": -0, "b": 01}',
    '{"a": 1}  ',
    '  {"a": "x@example.com"}',
    '{"a": "\\ud83d\\ude00", "b": "bob@example.com"}',
    '{"a": "caf\\u00e9", "b": "bob@example.com"}',
    '{"a": "\\ud800", "b": "bob@example.com"}',
    '["\\udc80", "bob@example.com", "x\\ud83d"]',
    '{"a": NaN, "b": "bob@example.com"}',
    '{"a": "x",}',
    '{"big": ' + "7" * 30 + ', "e": "a@example.com"}',
    '{"big": ' + "7" * 4400 + ', "e": "a@example.com"}',
    '{"a": "\\u0000ctl", "b": "ok value"}',
    '{"a": "\\r\\n", "b": "c"}',
    "{}",
    '{"a":{}}',
    "[]",
    "{not json: 1, b: 2}",
    # key=value logs
    "2024-05-12 10:30:45,123 INFO login user=alice email=alice@example.com ip=192.168.1.10",
    "2024-05-12T10:30:45Z WARN phone=13800138000 name='Zhang San' status=ok",
    'ts=2024-05-12 level=error msg="card 4111 1111 1111 1111 declined" uid=42',
    "a=b=c=d key.with-dots=value_x 中文键=中文值",
    "password=hunter2&user=bob&token=abcd1234efgh5678ijkl",
    "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc123DEF456",
    "[2024-05-12 10:30:45] 10.0.0.1 - - GET /index.html 200",
    "255.255.255.255 0.0.0.0 256.1.1.1 01.2.3.4 1.2.3",
    # chat ads with CJK labels
    "【出售】 姓名：张三 电话：138-0013-8000 身份证：" + CN_ID,
    "【出售】姓名：李四，电话：13800138000，身份证：" + CN_ID_2 + "。",
    "姓名：王五；手机：+86 138 0013 8000；生日：1990年5月12日；地址：北京市",
    "联系人:赵六 QQ:12345678 微信:zhaoliu_88",
    "出生日期：1990年05月12号，邮箱：li@example.cn",
    "1990 年 5 月 12 日 出生",
    "2024年13月45日 无效日期",
    "卡号：6222 0212 3456 7890 123，户名：张三",
    "收货人、电话、地址：张三、13800138000、北京",
    "你好！请问，这个多少钱？【急】",
    "张三 李四 王五 赵六",
    # phones of many shapes
    "call +1 (650) 253-0000 or 650.253.0000 or 6502530000",
    "tel: 020 7946 0958, mobile 07700 900123, +44 7700 900123",
    "Handy: 030 901820 / +49 (0)30 901820 / 0049 30 901820",
    "13800138000 13912345678 14700000000 19912345678 10000000000",
    "+86-138-0013-8000 +86 13800138000 008613800138000 0086 138 0013 8000",
    "(010) 6552 9988 010-65529988 +86 10 6552 9988",
    "numbers 1 2 3 4 5 6 7 8 9 10 11 12 13",
    "x12345678901234567890123 (((((1)))))",
    "+++123 +(86)13800138000 ++86 138",
    # ids, cards, ibans, ssns
    f"id {CN_ID} {CN_ID_2} {CN_ID_3} 110105194912310021 11010519491231002x",
    f"cards {CARD} 4111-1111-1111-1111 4111 1111 1111 1111 {AMEX} 4111111111111112",
    f"iban {IBAN_GB} {IBAN_GB_SPACED} {IBAN_DE} gb82west12345698765432 XX00 1234 5678 9012",
    f"{IBAN_GB}EXTRA {IBAN_DE}123 DE89 3704 0044 0532 0130 00",
    "ssn 123-45-6789 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000 123 45 6789",
    # dates
    "dob 1990-05-12 1990/5/12 12.05.1990 05/12/1990 12/13/1990 13/12/1990 31/02/1990",
    "born 12 Jan 1990, Jan 12 1990, January 12th, 1990, 12-jan-1990, Sept. 3, 1985",
    "19900512 20240230 18991231 21000101",
    "date: 2 Feb 2000 | 29 Feb 2001 | 29 Feb 2000",
    # prose, code
    "The quick brown fox jumps over the lazy dog",
    "Meeting at 10:30, room 4B; bring the Q3 report.",
    "def f(x): return {'a': x, 'b': [1, 2, 3]}",
    'if (a == b && c != d) { printf("%d\\n", x); }',
    "for i in range(10): print(i, i ** 2)",
    "SELECT * FROM users WHERE email = 'a@example.com';",
    "<td>alice@example.com</td><td>13800138000</td>",
    "https://example.com/path?user=bob&id=123#frag",
    "   ",
    "",
    "\t\t",
    "a\tb",
    "'\"`'\"`",
    "x" * 300 + ":" + "y" * 10,
    "word " * 30,
    ",".join(["张三"] * 50),
    # lines outside the native allowlist (deferred to extract.py)
    "José García,jose@example.es,+34 612 34 56 78",
    "电话\u3000138 0013 8000，姓名\u3000张三",
    "emoji 😀 alice@example.com:pw",
    "ｆｕｌｌｗｉｄｔｈ １３８００１３８０００ ＠",
    # full-width and NFKC-space writings (read natively as their ASCII forms)
    "身份证：１１０１０５　１９４９１２３１　００２Ｘ，电话：（＋８６）１３８－００１３－８０００",
    "ＩＢＡＮ：ｇｂ８２　ｗｅｓｔ　１２３４　５６９８　７６５４　３２",
    "card\u00a04111\u00a01111\u00a01111\u00a01111 ssn\u202f123-45-6789",
    '\u3000{"a": "x@example.com"}',
    '{"a": "ｘ＂ｙ", "b": "１１０１０５ １９４９１２３１ ００２Ｘ"}',
    '｛"a": "b@example.com"｝',
    "（１，'ｂｏｂ'，'１２３．４５．６７８９'）",
    "INSERT INTO t VALUES ('110105 19491231 002x', 'gb82 west 1234 5698 7654 32');",
    "Ünïcödé name: Zoë; phone +49 30 901820",
    "trailing carriage return alice@example.com:pw\r",
    "mid\rcarriage 13800138000",
    "ctl\x01char bob@example.com",
    "\x0bvertical\x0ctab 13800138000",
    "カタカナ：ヤマダ、電話：090-1234-5678",
    "한국어: 홍길동, 010-1234-5678",
    "\u4db6\u9ff0 boundary ideographs 13800138000",
    "\u3400\u4db5\u4e00\u9fef 在范围内 13800138000",
]

MULTILINE_EXAMPLES: list[str] = [
    "alice@example.com:pw1\nbob@example.com:pw2\nalice@example.com:pw1",
    "姓名,电话\n张三,13800138000\n李四,13912345678\n",
    "\n\n13800138000\n\n",
    'line one 13800138000\r\nline two é 13800138000\r\n{"a": "13800138000"}\r\n',
    '{"a": "x@example.com"}\n{"a": "x@example.com", "b": 1.5}\n{"a": "x@example.com"}',
    "INSERT INTO t VALUES ('a@example.com');\n(1,'b@example.com')\nplain c@example.com",
    # values wrapped over two lines (the first line's), next to lines the native scanner hands to Python
    "卡号 4111 1111\r\n    1111 1111 ok\nGB82 WEST 1234\n5698 7654 32\n身份证 11010519491231\n002X",
    'é 4111 1111\n1111 1111 é\n{"a": "4111 1111"}\n1111 1111\niban GB82WEST1234569876\n\t5432 ü',
    "１１０１０５　１９４９１２３１\n　００２Ｘ\n+86 138  1234  5678\n138  1234  5678\n+86  138 1234 5678",
]


@pytest.mark.parametrize("regions", REGION_SETS, ids=lambda r: "+".join(r) or "none")
@pytest.mark.parametrize("line", EXAMPLES, ids=range(len(EXAMPLES)))
def test_examples_match_reference(line: str, regions: tuple[str, ...]) -> None:
    assert_same(line, regions)


@pytest.mark.parametrize("regions", REGION_SETS, ids=lambda r: "+".join(r) or "none")
@pytest.mark.parametrize("text", MULTILINE_EXAMPLES, ids=range(len(MULTILINE_EXAMPLES)))
def test_multiline_examples_match_reference(text: str, regions: tuple[str, ...]) -> None:
    assert_same(text, regions)
    assert_same(text, regions, fresh=True)


def test_whole_dump_matches_reference() -> None:
    """All examples as one text: line numbers, per-line dedup and cross-line state."""
    text = "\n".join(EXAMPLES + MULTILINE_EXAMPLES)
    for regions in REGION_SETS:
        assert_same(text, regions)


def test_other_keys_match_reference() -> None:
    text = "\n".join(EXAMPLES[:40])
    for key in (b"", b"k", os.urandom(64), b"\x00" * 17):
        assert_same(text, ("CN", "US"), key, fresh=True)


def test_key_longer_than_a_block_is_refused() -> None:
    with pytest.raises(ValueError):
        HashedScanner(b"k" * 65, ("CN",))


# --------------------------------------------------------------------------- generated lines

_R = random.Random(20240512)
TOKENS: list[str] = [
    # emails, valid and not
    "alice@example.com", "Bob.Smith+x@Mail.Example.CO.UK", "a@b.co", "x@y.z", "a..b@example.com",
    ".a@example.com", "a.@example.com", "a@-bad.com", "a@bad-.com", "a@exa_mple.com", "用户@example.com",
    "user@例子.中国", "a@b", "@example.com", "a@", "a@b.c0m", "test@localhost", "q@" + "d" * 70 + ".com",
    "a@1.2.3.4", "u@a.b.c.d.e.f.g.h.i.j.com", "z@" + "x" * 20 + "." + "y" * 30,
    # phones
    "13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "+8613800138000", "0086 13800138000",
    "008613800138000", "+86-138-0013-8000", "1380013800", "138001380001", "14700000000", "19912345678",
    "16612345678", "17012345678", "+1 650 253 0000", "(650) 253-0000", "650.253.0000", "6502530000",
    "+44 20 7946 0958", "020 7946 0958", "07700 900123", "+49 30 901820", "030 901820", "0049 30 901820",
    "+49 (0)30 901820", "(010) 6552 9988", "010-65529988", "+(86)13800138000", "1-800-555-0199",
    # ids, cards, ibans, ssns
    CN_ID, CN_ID_2, CN_ID_3, CN_ID.lower(), CN_ID[:-1] + "0", "110105194912310021", "99010519491231002X",
    CARD, "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111112", UNIONPAY, AMEX,
    "6222 0212 3456 7890 123", "5500 0000 0000 0004",
    IBAN_GB, IBAN_GB_SPACED, IBAN_DE, IBAN_FR, "gb82west12345698765432", "GB82WEST1234569876543", "XX00ABCD1234",
    "DE89 3704 0044 0532 0130 00", "NO9386011117947", "AB12 CD34 EF56 GH78",
    "123-45-6789", "000-12-3456", "666-12-3456", "923-45-6789", "123-00-6789", "123-45-0000", "123 45 6789",
    # grouped writings (issue 13): cn_id 6-8-4 / 6-4-4-4, IBAN fours in any case, cards, SSN, several separators
    "110105 19491231 002X", "110105-1949-1231-002x", "110105.19491231.002X", "110105  19491231  002X",
    "110105 - 19491231 - 002X", "110105 19491231-002X", CN_ID_2[:6] + " " + CN_ID_2[6:14] + " " + CN_ID_2[14:],
    "gb82west12345698765432", "gb82-west-1234-5698-7654-32", "GB82  WEST  1234  5698  7654  32",
    "DE89.3704.0044.0532.0130.00", "Nl91 Abna 0417 1643 00", "BE68 5390 0754 7034 1000",
    "4111.1111.1111.1111", "4111  1111  1111  1111", "3782 822463 10005", "3056.930902.5904", "4111 . 1111",
    "123.45.6789", "123  45  6789", "123 - 45 - 6789", "1 123 45 6789", ".", "..", " - ", " . ", "  -  ",
    "（＋８６）１３８　１２３４　５６７８", "１１０１０５　１９４９１２３１　００２Ｘ", "ＧＢ８２ＷＥＳＴ１２３４５６９８７６５４３２",
    "４１１１－１１１１－１１１１－１１１１", "\u00a0", "\u3000", "\u202f", "\u2007", "＂", "＇", "｛", "（", "＝", "｜",
    # dates
    "1990-05-12", "1990/5/12", "1990.05.12", "12/05/1990", "05/12/1990", "13/12/1990", "12/13/1990",
    "31/02/1990", "29/02/2000", "19900512", "20240230", "1990年5月12日", "1990 年 5 月 12 日", "1990年05月12号",
    "2024年13月1日", "12 Jan 1990", "Jan 12 1990", "January 12th, 1990", "12-jan-1990", "Sept. 3, 1985",
    "3 sept 1985", "1 Foo 1990", "2024-05-12 10:30:45,123", "10:30:45", "1899-12-31", "2100-01-01",
    # ip
    "192.168.1.10", "10.0.0.1", "256.1.1.1", "01.2.3.4", "1.2.3", "0.0.0.0",
    # CJK names, words, punctuation
    "张三", "李四", "王五", "欧阳娜娜", "姓名", "电话", "身份证", "地址", "北京市朝阳区建国路", "中华人民共和国万岁万岁万岁",
    "姓名：", "电话：", "身份证：", "【出售】", "【", "】", "、", "。", "！", "，", "：", "；", "？",
    "㐀", "䶵", "一", "鿯",
    # ASCII words and names
    "John Smith", "O'Brien", "Mary-Jane", "dragon_slayer", "hunter2", "P@ssw0rd!", "qwerty123", "ABC123456",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "eyJhbGciOiJIUzI1NiJ9", "Zhang San", "zhang", "a", "ab", "abc",
    "INSERT INTO users VALUES (", "insert into", "VALUES", ");", "(", ")", "{", "}", "[", "]",
    '{"a": "', '"}', '", "b": ', "null", "true", "1.5", "-0", "\\u4e2d", "\\n", "\\'", "''", "\\",
    # delimiters, quotes, '=', spaces
    ":", ";", "|", ",", "\t", "  ", "   ", " ", "=", "key=", "user=", "&", "'", '"', "`", "--", "-", "/", ".",
    "@", "+", "#", "x", "X", "0", "1", "00", "86", "+86", "0086",
    # outside the allowlist (é, José, カタカナ, 홍길동, ß are native since test_pipelines_fastscan_scripts.py)
    "é", "José", "\u3000", "😀", "\r", "\x00", "\x85", "\u2028", "１３８", "＠", "ｆｕｌｌ", "カタカナ", "홍길동",
    "ß", "İ", "ﬁ", "\u200b", "\ufeff", "\u4db6", "\u9ff0", "\U00020000", "“", "”", "‘", "’", "·", "—",
]  # fmt: skip

ALLOWED_CHARS = (
    "".join(chr(c) for c in range(0x20, 0x7F))
    + "\t"
    + "、。【】！，：；？"
    + "０１２３４５６７８９ＡＢＸｘｇｂ－．＠＇＂｛（＝\u3000\u00a0\u2007\u202f"
    + "张三李四王五赵六姓名电话身份证地址年月日号出售北京上海中文"
    + "\u3400\u4db5\u4e00\u9fef"
)
OUTSIDE_CHARS = "é\u3000😀\r\x00\x0b\x1c\x7f\x85\u2028１＠ßİﬁ\u200b\u4db6\u9ff0カ홍“’·"

_piece = st.one_of(
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS),
    st.text(alphabet=ALLOWED_CHARS, min_size=1, max_size=6),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=8),
    st.from_regex(r"[0-9]{1,19}", fullmatch=True),
    st.sampled_from(OUTSIDE_CHARS),
)
_allowed_piece = st.one_of(
    st.sampled_from([t for t in TOKENS if all(c in ALLOWED_CHARS for c in t)]),
    st.text(alphabet=ALLOWED_CHARS, min_size=1, max_size=6),
    st.from_regex(r"[0-9]{1,19}", fullmatch=True),
)
_line = st.lists(_piece, min_size=1, max_size=14).map("".join)
_allowed_line = st.lists(_allowed_piece, min_size=1, max_size=14).map("".join)
_regions = st.sampled_from(REGION_SETS)


def _json_line(values: list[object]) -> str:
    return json.dumps({f"k{i}": v for i, v in enumerate(values)}, ensure_ascii=False)


_json_scalar = st.one_of(
    _allowed_line,
    _line,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=_line, regions=_regions)
def test_generated_lines_match_reference(line: str, regions: tuple[str, ...]) -> None:
    assert_same(line, regions)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=_allowed_line, regions=_regions)
def test_generated_allowlist_lines_match_reference(line: str, regions: tuple[str, ...]) -> None:
    """Lines the native scanner reads itself (nothing deferred), where a port difference would show."""
    assert_same(line, regions)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(_line, _allowed_line), min_size=2, max_size=6), regions=_regions)
def test_generated_texts_match_reference(lines: list[str], regions: tuple[str, ...]) -> None:
    newline = "\r\n" if len(lines) % 2 else "\n"
    assert_same(newline.join(lines), regions)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_json_scalar, min_size=1, max_size=6), regions=_regions, ascii_only=st.booleans())
def test_generated_json_lines_match_reference(
    values: list[object], regions: tuple[str, ...], ascii_only: bool
) -> None:
    flat = _json_line(values)
    if ascii_only:
        flat = json.dumps(json.loads(flat), ensure_ascii=True)
    nested = json.dumps({"outer": {"inner": values}, "x": values[:1]}, ensure_ascii=ascii_only)
    assert_same(flat, regions)
    assert_same(nested, regions)
    assert_same(json.dumps(values, ensure_ascii=ascii_only), regions)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.one_of(_allowed_line, _line), min_size=1, max_size=5), regions=_regions)
def test_generated_sql_lines_match_reference(values: list[str], regions: tuple[str, ...]) -> None:
    body = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    assert_same(f"INSERT INTO t VALUES (1,{body});", regions)
    escaped = ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    assert_same(f"({escaped})", regions)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=120), regions=_regions)
def test_arbitrary_unicode_matches_reference(text: str, regions: tuple[str, ...]) -> None:
    assert_same(text, regions)


def _candidates_on_lines_match(text: str, numbers: set[int], regions: tuple[str, ...]) -> None:
    got = fastscan.candidates_on_lines(text, numbers, regions)
    expected = [c for c in _reference_candidates(text, regions) if c.line in numbers]
    if got != expected:
        only_native = sorted({(c.line, c.field_type, c.canonical, c.raw) for c in set(got) - set(expected)})
        only_reference = sorted(
            {(c.line, c.field_type, c.canonical, c.raw) for c in set(expected) - set(got)}
        )
        pytest.fail(
            f"candidates_on_lines != extract.py for regions={regions!r}, lines={sorted(numbers)[:20]!r}:\n"
            f"  only candidates_on_lines: {only_native[:20]!r}\n  only extract.py: {only_reference[:20]!r}\n"
            f"  (same set, other order: {not only_native and not only_reference})",
            pytrace=False,
        )


def test_candidates_on_lines_match_reference() -> None:
    """The candidates (raw text too, in extract.py's order) of the lines a hash hit."""
    text = "\n".join(EXAMPLES + MULTILINE_EXAMPLES)
    count = text.count("\n") + 1
    rng = random.Random(13)
    for regions in REGION_SETS:
        _candidates_on_lines_match(text, set(range(1, count + 1)), regions)
        _candidates_on_lines_match(text, set(rng.sample(range(1, count + 1), 25)), regions)
    _candidates_on_lines_match(text, {count + 5, 0, -1}, ("CN",))
    assert fastscan.candidates_on_lines(text, set(), ("CN",)) == []


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.one_of(_line, _allowed_line), min_size=1, max_size=6), regions=_regions, data=st.data()
)
def test_generated_candidates_on_lines_match_reference(
    lines: list[str], regions: tuple[str, ...], data: st.DataObject
) -> None:
    numbers = data.draw(st.sets(st.integers(min_value=1, max_value=len(lines) + 1), max_size=len(lines)))
    _candidates_on_lines_match("\n".join(lines), numbers, regions)


# --------------------------------------------------------------------------- hostile input


def _random_ascii(size: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return rng.integers(0x20, 0x7F, size=size, dtype=np.uint8).tobytes().decode("ascii")


def _timed_scan(text: str, regions: tuple[str, ...] = ("CN", "US")) -> tuple[fastscan.HashedScan, float]:
    start = time.monotonic()
    scan = HashedScanner(KEY, regions).scan(text, deadline_s=120)
    return scan, time.monotonic() - start


def test_five_megabyte_line_of_random_ascii_is_bounded() -> None:
    text = _random_ascii(5_000_000, 1)
    scan, took = _timed_scan(text)
    assert isinstance(scan.partial, bool)
    assert took < 60
    _pairs_of(scan)


def test_long_ascii_lines_match_reference() -> None:
    # Lines just under, at and over the native scanner's segment size.
    for size in (65_535, 65_536, 65_537, 200_000):
        text = _random_ascii(size, size)
        assert_same(text, ("CN", "US"))
        assert_same(text + "\r", ("CN",))


def test_binary_junk_decoded_with_surrogateescape_matches_reference() -> None:
    rng = random.Random(7)
    data = bytes(rng.randrange(256) for _ in range(200_000))
    text = data.decode("utf-8", "surrogateescape")
    _cold()
    scan, took = _timed_scan(text)
    assert isinstance(scan.partial, bool) and took < 60
    # the scanner reads what extract.py reads: surrogates replaced
    bounded = ex._bounded(text, 50_000_000)
    _cold()
    expected = reference(bounded, ("CN", "US"))
    if _pairs_of(scan) != expected:
        pytest.fail(_describe(bounded, ("CN", "US"), KEY, expected, _pairs_of(scan)), pytrace=False)
    small = bytes(rng.randrange(256) for _ in range(4_000)).decode("utf-8", "surrogateescape")
    assert_same(small, ("CN",))


def test_mostly_ascii_junk_lines_match_reference() -> None:
    rng = random.Random(11)
    alphabet = "0123456789-+() ./@:;,|=\t'\"xX" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400))) for _ in range(300)]
    for regions in REGION_SETS:
        assert_same("\n".join(lines), regions)


def test_nested_json_brackets_match_reference() -> None:
    for text in (
        "[" * 2000 + "]" * 2000,
        "{" * 2000,
        '{"a":' * 2000 + '"13800138000"' + "}" * 2000,
        "[" * 60 + '"alice@example.com"' + "]" * 60,
        "[" * 70 + '"alice@example.com"' + "]" * 70,
    ):
        scan, took = _timed_scan(text)
        assert isinstance(scan.partial, bool) and took < 30
        assert_same(text, ("CN", "US"))


def test_line_of_commas_matches_reference() -> None:
    for text in ("," * 100_000, ",a" * 50_000, "," * 60_000, "13800138000," * 5000):
        scan, took = _timed_scan(text)
        assert isinstance(scan.partial, bool) and took < 30
        assert_same(text, ("CN",))


def test_many_fields_and_digit_runs_match_reference() -> None:
    # Lines that spend much of the work budget (the native scanner hands them to extract.py).
    for text in (
        ",".join(f"v{i}" for i in range(3000)),
        " ".join("1" * 7 for _ in range(3000)),
        ",".join(f"a{i}@example.com" for i in range(1500)),
        " ".join("13800138000" for _ in range(2000)),
        "=".join("k" for _ in range(3000)),
        "a=" * 1000,
        "'" * 20_000,
        "INSERT INTO t VALUES (" + ",".join(f"'x{i}'" for i in range(2500)) + ")",
        "INSERT INTO t VALUES ('" + "a" * 20_000 + "')",
    ):
        assert_same(text, ("CN", "US"))


def test_json_lone_surrogate_escape_does_not_crash() -> None:
    """A JSON line escaping a lone surrogate: json.loads gives a str that UTF-8 cannot encode. extract.py
    yields it as a `text` candidate, and hashing it (f"...".encode()) raises; the scan must not."""
    for line in ('{"a": "\\ud800", "b": "bob@example.com"}', '["\\udc80", "bob@example.com"]'):
        names = {(c.field_type, c.canonical) for c in _reference_candidates(line, ("CN",))}
        assert ("email", "bob@example.com") in names
        try:
            got = native(line, ("CN",))
        except UnicodeEncodeError as exc:
            pytest.fail(
                f"HashedScanner.scan({line!r}) raised {exc!r}; extract.py gives {sorted(names)!r}",
                pytrace=False,
            )
        assert (_digest(KEY, "email", "bob@example.com"), 1) in got
        assert_same(line, ("CN",))


PHONE_REGION_SETS: list[tuple[str, ...]] = [
    ("JP",), ("FR", "IT"), ("RU", "KZ"), ("CA",), ("IN", "BR"), ("AU", "NZ"), ("AR", "MX"), ("SG", "HK", "TW"),
    ("KR", "CN"), ("GB", "GG", "JE"), ("US", "PR"), ("ES", "NL", "BE"), ("DE", "AT", "CH"),
]  # fmt: skip


def _phone_lines(regions: tuple[str, ...], rng: random.Random) -> list[str]:
    """libphonenumber's example numbers of the regions (every type), written several ways and mutated."""
    formats = (
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    )
    lines = []
    for region in (*regions, "US", "GB", "CN"):
        for kind in range(12):  # every PhoneNumberType with examples
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt in formats:
                written = phonenumbers.format_number(number, fmt)
                digits = [i for i, c in enumerate(written) if c.isdigit()]
                i = rng.choice(digits)
                lines.append(f"tel: {written}")
                lines.append(f"{written.replace('+', '00', 1)}, {written.replace('+', '', 1)}")
                lines.append(written[:i] + str((int(written[i]) + 1) % 10) + written[i + 1 :])
                lines.append(written[:i] + written[i + 1 :] + " / " + written[:i] + "7" + written[i:])
                lines.append(f"({written}) x12 #{written}")
    return lines


@pytest.mark.parametrize("regions", PHONE_REGION_SETS, ids=lambda r: "+".join(r))
def test_phone_numbers_of_many_regions_match_reference(regions: tuple[str, ...]) -> None:
    """National and international numbers in tenant regions beyond the usual ones (the native scanner
    rules numbers out by automata built from each region's metadata, and asks libphonenumber otherwise)."""
    lines = _phone_lines(regions, random.Random("+".join(regions)))
    assert_same("\n".join(lines), regions)
    for line in lines[:: max(1, len(lines) // 40)]:
        assert_same(line, regions)


EDGE_CASES: dict[str, str] = {
    # the native scanner's own limits: segment size, SQL value size, JSON keys, int digits, depth
    "line_65536": "a@b.com," + "x" * (65_536 - 8),
    "line_65536_cr": "a@b.com," + "x" * (65_536 - 8) + "\r",
    "line_65537": "a@b.com," + "x" * (65_537 - 8),
    "sql_value_16384": "INSERT INTO t VALUES ('" + "a" * 16_384 + "', 'b@example.com')",
    "sql_value_16385": "INSERT INTO t VALUES ('" + "a" * 16_385 + "', 'b@example.com')",
    "json_long_value": '{"a": "' + "x" * 70_000 + '", "b": "c@example.com"}',
    "json_64_keys": "{" + ",".join(f'"k{i}": "v{i}@example.com"' for i in range(64)) + "}",
    "json_65_keys": "{" + ",".join(f'"k{i}": "v{i}@example.com"' for i in range(65)) + "}",
    "json_int_4000": '{"a": ' + "1" * 4000 + ', "b": "x@example.com"}',
    "json_int_4001": '{"a": ' + "1" * 4001 + ', "b": "x@example.com"}',
    "json_int_4300": '{"a": ' + "1" * 4300 + ', "b": "x@example.com"}',
    "json_negative_int_4300": '{"a": -' + "1" * 4300 + ', "b": "x@example.com"}',
    "json_int_4301": '{"a": ' + "1" * 4301 + ', "b": "x@example.com"}',  # json.loads refuses it: text
    "json_raw_tab": '{"a": "x\ty", "b": "x@example.com"}',
    "json_depth_63": "[" * 63 + '"a@b.com"' + "]" * 63,
    "json_depth_64": "[" * 64 + '"a@b.com"' + "]" * 64,
    "json_depth_65": "[" * 65 + '"a@b.com"' + "]" * 65,
    "json_empty_strings": '{"a": "", "b": " ", "c": "\\n"}',
    "json_whitespace": ' \t{ "a" : "x@example.com" , "b":1 }\t ',
    "json_slash_escapes": '{"a": "http:\\/\\/example.com\\/x", "b": "\\b\\f"}',
    "json_escaped_key_quote": '{"a\\"b": "x@example.com"}',
    "json_bad_literals": '{"a": tru, "b": 1} {"a": nullx} {"a": true1}',
    "cr_runs": "13800138000\r\r\nx@example.com\r\r\r",
    "local_part_64": "a" * 64 + "@example.com",
    "local_part_65": "a" * 65 + "@example.com",
    "iban_nine_groups": "GB82 WEST 1234 5698 7654 32AB CDEF GHIJ KLMN OPQR",
    "num_run_14_groups": " ".join(["138"] * 14),
    "num_run_30_groups": "-".join(["1"] * 30),
    "digits_5000": "1" * 5000,
    "digit_runs_800": " ".join(str(10**10 + i) for i in range(800)),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_match_reference(name: str) -> None:
    for regions in REGION_SETS:
        assert_same(EDGE_CASES[name], regions)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    unit=st.lists(
        st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", " ", ",", "  ", "\t", ";", "="])),
        min_size=1,
        max_size=4,
    ),
    repeat=st.integers(min_value=20, max_value=3000),
    regions=_regions,
)
def test_generated_long_repetitive_lines_match_reference(
    unit: list[tuple[str, str]], repeat: int, regions: tuple[str, ...]
) -> None:
    """Long dump-like lines that spend the work budget (the native scanner hands those to extract.py)."""
    assert_same("".join(a + b for a, b in unit) * repeat, regions)


# --------------------------------------------------------------------------- HMAC, tables, deadline


def test_native_hmac_equals_hashlib() -> None:
    _scanner = importlib.import_module("pipelines.detection._scanner")

    rng = random.Random(3)
    keys = [b"", b"k", bytes(range(32)), bytes(rng.randrange(256) for _ in range(64))]
    messages = [bytes(rng.randrange(256) for _ in range(n)) for n in range(201)] + [
        bytes(rng.randrange(256) for _ in range(5000))
    ]
    try:
        for allowed in (True, False):
            _scanner.use_sha_ni(allowed)
            for key in keys:
                scanner = _scanner.Scanner(key, [], [False], bytes(10000), None, None)
                for message in messages:
                    expected = hmac.new(key, message, hashlib.sha256).digest()
                    assert scanner.hmac(message) == expected, (allowed, len(key), len(message))
                    assert scanner.hmac(bytearray(message)) == expected
        # a key set up by one implementation hashes the same under the other
        _scanner.use_sha_ni(True)
        scanner = _scanner.Scanner(KEY, [], [False], bytes(10000), None, None)
        _scanner.use_sha_ni(False)
        assert (
            scanner.hmac(b"email\x00a@example.com")
            == hmac.new(KEY, b"email\x00a@example.com", "sha256").digest()
        )
    finally:
        _scanner.use_sha_ni(True)


def test_cn_mobile_table_agrees_with_pattern() -> None:
    table = fastscan._cn_mobile_table()
    assert len(table) == 10_000 and set(table) <= {0, 1, 2}
    rng = np.random.default_rng(5)
    numbers = rng.integers(0, 10**10, size=200_000, dtype=np.int64)
    checked = 0
    for n in numbers.tolist():
        number = f"1{n:010d}"
        verdict = table[int(number[1:5])]
        if verdict == 2:
            continue
        checked += 1
        assert (ex._CN_MOBILE.fullmatch(number) is not None) == (verdict == 1), number
    assert checked > 100_000


def test_zero_deadline_returns_partial_or_nothing() -> None:
    text = "\n".join(EXAMPLES * 50)
    for regions in (("CN",), ("CN", "US")):
        scan = HashedScanner(KEY, regions).scan(text, deadline_s=0)
        assert isinstance(scan.partial, bool)
        assert scan.partial or scan.pairs.shape[0] == 0
        _pairs_of(scan)


def test_scan_results_are_well_formed() -> None:
    text = "\n".join(EXAMPLES)
    scan = HashedScanner(KEY, ("CN", "US")).scan(text)
    pairs = _pairs_of(scan)
    assert scan.partial is False
    lines = text.count("\n") + 1
    assert all(1 <= line <= lines for _, line in pairs)
    # every (digest, line) pair appears once
    assert len(pairs) == scan.pairs.shape[0]
    unique = scan.unique_sorted()
    assert len(unique) % 16 == 0
    chunks = [unique[i : i + 16] for i in range(0, len(unique), 16)]
    assert chunks == sorted(set(chunks))
    assert {d for d, _ in pairs} <= set(chunks)


def test_repeated_scans_with_one_scanner_are_stable() -> None:
    scanner = HashedScanner(KEY, ("CN", "US"))
    texts = ["\n".join(EXAMPLES[i : i + 7]) for i in range(0, len(EXAMPLES), 7)]
    first = [_pairs_of(scanner.scan(t)) for t in texts]
    again = [_pairs_of(scanner.scan(t)) for t in reversed(texts)][::-1]
    assert first == again
    for text, got in zip(texts, first, strict=True):
        expected = reference(text, ("CN", "US"))
        if got != expected:
            pytest.fail(_describe(text, ("CN", "US"), KEY, expected, got), pytrace=False)
