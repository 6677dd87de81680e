"""The native scanner's fast paths (issue 12) against extract.py: the same (keyed hash, line) pairs.

The scanner skips from one character that can start a pattern to the next on a per-line class array,
16 characters at a time (emails, IBANs, digit runs, grouped values, delimiters, labels); it reads a value
without spaces (or with single spaces) as its own text and username form; it refuses a value wrapped over
two lines from its two runs alone; it writes one-block HMAC messages straight into their blocks. Each of
these must find exactly what extract.py finds: candidates at every alignment to the 16-character blocks,
at the end of the line, next to multibyte text, and messages on both sides of the one-block limit.
"""

from __future__ import annotations

import hmac

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.detection import extract as ex
from pipelines.detection import fastscan
from pipelines.detection.extract import extract_candidates
from pipelines.detection.fastscan import HashedScanner

pytestmark = pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")

KEY = bytes(range(32))
REGION_SETS: list[tuple[str, ...]] = [("CN",), ("US",), ("CN", "US"), ()]
_SCANNERS: dict[tuple[str, ...], HashedScanner] = {}


def _digest(field_type: str, canonical: str) -> bytes:
    message = f"{field_type}\x00{canonical}".encode("utf-8", "surrogatepass")
    return hmac.digest(KEY, message, "sha256")[:16]


def _reference(text: str, regions: tuple[str, ...]) -> set[tuple[bytes, int]]:
    ex._RUN_CACHE.clear()  # extract.py's digit-run cache changes what a budget-bound line finds
    return {
        (_digest(c.field_type, c.canonical), c.line)
        for c in extract_candidates(text, regions, deadline_s=600)
    }


def _native(text: str, regions: tuple[str, ...]) -> set[tuple[bytes, int]]:
    scanner = _SCANNERS.get(regions)
    if scanner is None:
        scanner = _SCANNERS[regions] = HashedScanner(KEY, regions)
    scan = scanner.scan(text, deadline_s=600)
    assert not scan.partial
    digests = scan.digests
    return {(digests[16 * i : 16 * i + 16], line) for i, line in scan.pairs.tolist()}


def assert_same(text: str, regions: tuple[str, ...] = ("CN",)) -> None:
    expected = _reference(text, regions)
    got = _native(text, regions)
    if got != expected:
        lines = sorted({n for _, n in expected ^ got})
        shown = [text.split("\n")[n - 1][:300] for n in lines[:3]]
        pytest.fail(
            f"native != extract.py for regions={regions!r} on lines {lines[:10]}: {shown!r}; "
            f"{len(expected - got)} missing, {len(got - expected)} extra",
            pytrace=False,
        )


def assert_same_listing(text: str, regions: tuple[str, ...] = ("CN",)) -> None:
    """The listing path (candidates of given lines, raw text included) agrees with extract.py too."""
    count = text.count("\n") + 1
    numbers = set(range(1, count + 1))
    ex._RUN_CACHE.clear()
    expected = [c for c in extract_candidates(text, regions, deadline_s=600)]
    ex._RUN_CACHE.clear()
    got = fastscan.candidates_on_lines(text, numbers, regions)
    key = lambda c: (c.line, c.field_type, c.canonical, c.raw)  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, expected))


# --------------------------------------------------------------------------- pieces

VALUES = [
    "alice@example.com", "Bob.Smith+x@Mail.Example.CO.UK", "a@b.co", "用户@example.com", "x@y", "@", "a@@b.cc",
    "13800138000", "+86 138 0013 8000", "138-0013-8000", "(650) 253-0000", "+1 650 253 0000", "+(86)13800138000",
    "11010519491231002X", "110105 19491231 002X", "110105-1949-1231-002x", "4111 1111 1111 1111",
    "4111111111111111", "3782 822463 10005", "GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32",
    "gb82west12345698765432", "NO9386011117947", "DE89370400440532013000", "AB12", "ZZ99 1234",
    "123-45-6789", "1990-05-12", "12/05/1990", "19900512", "1990年5月12日", "Jan 12 1990", "192.168.1.10",
    "John Smith", "O'Brien", "hunter2", "P@ssw0rd!", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "张三", "姓名",
    "user=alice", "name: Bob", "pwd = x", "e-mail:a@b.co", "a=b=c", "k : v", "=v", ":v", "key='quoted value'",
    'k="a b"', "x" * 41 + "=value", "k=" + "v" * 300, "Straße", "José Núñez", "Ёлка", "カタカナ", "홍길동",
]  # fmt: skip

FILLERS = [*"aZ7 \t中é,;|:=@+(-.'ß\u3001", "  "]

_filler = st.lists(st.sampled_from(FILLERS), max_size=40).map("".join)
_value = st.one_of(
    st.sampled_from(VALUES),
    st.from_regex(r"[0-9]{1,19}", fullmatch=True),
    st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{4,30}", fullmatch=True),
    st.text(alphabet="ab Z9@.:=,;|'\"\t-+()中ßé", min_size=1, max_size=12),
)
_regions = st.sampled_from(REGION_SETS)


# --------------------------------------------------------------------------- alignment to the skip blocks


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_value_at_every_alignment_and_at_the_end(value: str) -> None:
    """A value after 0..40 filler characters (every position in a 16-character block), with and
    without more text after it, alone or in a delimited record."""
    lines = []
    for pad in range(41):
        lines.append("x" * pad + " " + value)
        lines.append("中" * pad + "," + value)
        lines.append(" " * pad + value + ";" + value[::-1])
        lines.append(("k=v " * pad)[:pad] + value)
    assert_same("\n".join(lines))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.tuples(_filler, _value), min_size=1, max_size=6), tail=_filler, regions=_regions)
def test_generated_values_between_fillers_match_reference(
    parts: list[tuple[str, str]], tail: str, regions: tuple[str, ...]
) -> None:
    assert_same("".join(f + v for f, v in parts) + tail, regions)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.lists(st.tuples(_filler, _value), max_size=4), min_size=2, max_size=6))
def test_generated_texts_between_fillers_match_reference(lines: list[list[tuple[str, str]]]) -> None:
    text = "\n".join("".join(f + v for f, v in parts) for parts in lines)
    assert_same(text)
    assert_same_listing(text)


def test_delimiters_and_double_spaces_at_block_edges() -> None:
    lines = []
    for pad in range(34):
        body = "w" * pad
        lines += [body + "  next  field", body + " x  y", body + ":" + "v", body + "\t" + "13800138000"]
        lines += [body + "  ", body + ",", "  " + body, body + " " * (pad % 5 + 1) + "hunter2"]
    assert_same("\n".join(lines))


def test_labels_in_every_position() -> None:
    keys = ["k", "user", "e-mail", "a.b", "x" * 40, "x" * 41, "用户", "ключ", "_"]
    values = ["alice@example.com", "'a b'", '"q"', "13800138000", "", " v", "v:w", "=", "a=b"]
    lines = []
    for pad in range(0, 20, 3):
        for k in keys:
            for v in values:
                for sep in ("=", ":", " =", " :", "= ", ": ", "  =", "\uff1a"):
                    lines.append("." * pad + k + sep + v + " tail=1")
    assert_same("\n".join(lines))


def test_ibans_and_emails_at_block_edges() -> None:
    lines = []
    for pad in range(40):
        lines.append("9" * pad + "GB82WEST12345698765432")
        lines.append("a" * pad + "GB82WEST12345698765432")
        lines.append("-" * pad + "GB82 WEST 1234 5698 7654 32 x")
        lines.append("." * pad + "ab.cd@example.com")
        lines.append("a" * pad + "@example.com " + "b" * pad + "@x.co")
    assert_same("\n".join(lines))


# --------------------------------------------------------------------------- values wrapped over two lines


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.from_regex(r"[A-Za-z0-9]{1,36}", fullmatch=True),
    second=st.from_regex(r"[A-Za-z0-9]{1,36}", fullmatch=True),
    before=st.sampled_from(["", "id ", "x-", "卡号 ", "a b "]),
    after=st.sampled_from(["", " ok", "-1", " 中", "  "]),
)
def test_generated_wrapped_runs_match_reference(first: str, second: str, before: str, after: str) -> None:
    assert_same(f"{before}{first}\n{second}{after}")


def test_wrapped_ids_split_at_every_point() -> None:
    values = ["11010519491231002X", "110105194912310021", "GB82WEST12345698765432", "NO9386011117947"]
    lines = []
    for value in values:
        for cut in range(1, len(value)):
            lines += [f"id {value[:cut]}", f"{value[cut:]} end"]
            lines += [f"{value[:cut]}", f"{value[cut:]}"]
            lines += ["x" + value[:cut], value[cut:] + "y"]
    assert_same("\n".join(lines))


def test_grouped_values_wrapped_at_every_separator() -> None:
    """Grouped cn_ids, cards and IBANs broken over two lines at each of their separators (and inside a
    group), with separators of every kind, and near misses: groups of other lengths before the break."""
    values = [
        "110105 19491231 002X", "110105-1949-1231-002x", "4111 1111 1111 1111", "3782 822463 10005",
        "6222 0212 3456 7890 123", "GB82 WEST 1234 5698 7654 32", "gb82.west.1234.5698.7654.32",
        "NO93 8601 1117 947", "41111 111 1111 1111", "11010 519491231 002X", "4111 11111 111 1111",
        "123-45-6789", "2024-05-07 03:16:58", "/api/v1/show/29414", "ab12 cd34 ef56 gh78 ij90 kl12",
    ]  # fmt: skip
    lines = []
    for value in values:
        for sep in (" ", "-", ".", "  ", " - "):
            v = value.replace(" ", sep) if sep != " " else value
            for cut in range(1, len(v)):
                first, second = v[:cut].rstrip(), v[cut:].lstrip()
                if first and second:
                    lines += [f"no {first}", f"{second} ok", first, second]
    assert_same("\n".join(lines))
    assert_same("\n".join(lines), ())


# --------------------------------------------------------------------------- field values and messages


@pytest.mark.parametrize("regions", REGION_SETS, ids=lambda r: "+".join(r) or "none")
def test_plain_and_single_spaced_values(regions: tuple[str, ...]) -> None:
    """Values read as their own text/username form, and the ones that are not (runs of spaces, tabs, ß
    making the folded form longer than a username may be)."""
    values = [
        "word", "two words", "two  words", "tab\tword", "a b c d", "a b c d e f g h i", "ab", "abc", "x" * 64,
        "x" * 65, "ß" * 33, "ß" * 32, "a" * 60 + "ßßßß", "a" * 62 + "ß", "Straße Nr", "Ёлка  Ёлка", "张 三",
        "张三 李四", "张三\t李四", "MiXeD CaSe", "UPPER", "ＡＢＣ ｄｅｆ", "a\u3000b", "a\u00a0\u00a0b",
    ]  # fmt: skip
    lines = []
    for v in values:
        lines += [v, f"{v},{v}", f"k={v}", f"'{v}'", f"x|{v}| y", f"{v};13800138000"]
        # SQL values keep tabs and runs of spaces inside a field (delimited() splits at them)
        lines += [f"INSERT INTO t VALUES ('{v}', ' {v} ', '{v}\t{v}', '{v}  x');"]
    assert_same("\n".join(lines), regions)


def test_messages_on_both_sides_of_one_block() -> None:
    """'type NUL canonical' of 40..70 bytes (one SHA-256 block holds 55), ASCII and multibyte."""
    lines = []
    for n in range(30, 66):
        lines.append("u" * n)  # text, username
        lines.append("用" * (n // 3) + "a" * (n % 3))  # three bytes a character
        lines.append("é" * (n // 2) + "," + "Ё" * (n // 2))  # two bytes a character
        lines.append(("ab " * n)[: n + 5].strip())
    text = "\n".join(lines)
    assert_same(text)
    assert_same_listing(text)


def test_many_distinct_candidates_cross_the_hashing_chunks() -> None:
    """More than DIGEST_CHUNK (8192) distinct candidates in one scan: hashed in several chunks."""
    rng = np.random.default_rng(12)
    lines = [
        f"user{i}@mail{i % 97}.com;pw{rng.integers(1 << 40):x};{13800000000 + int(rng.integers(10**8))}"
        for i in range(3500)
    ]
    assert_same("\n".join(lines), ("CN",))


def test_keys_of_every_length_in_the_sets() -> None:
    """Set keys (and their hashes) of 0..80 bytes, repeated on one line and across lines."""
    lines = []
    for n in range(1, 81):
        v = "".join(chr(ord("a") + (i * 7 + n) % 26) for i in range(n))
        lines.append(f"{v},{v},{v.upper()}|{v}")
        lines.append(f"{v} {v}")
    assert_same("\n".join(lines + lines))
