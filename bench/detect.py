"""Detection benchmark: scan throughput, index size and build time, retro-match time, and the `scan`
path users run, each beside a naive baseline measured in the same run on the same data.

Why a baseline in the same run: absolute figures depend on the machine; the ratio to the obvious
implementation (one Python regex per type, a Python set of hex hashes, a linear scan) does not.

    python bench/detect.py            # 200 MB corpus, 10 M registered values, 1 M stored postings
    python bench/detect.py --quick    # 1/20 of every size (about a minute)
    python bench/detect.py --scan-only --scan-mb 10   # (e) only: `scan` with every watch kind, 3 runs
"""

from __future__ import annotations

import argparse
import gc
import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS threads would spin on the other core
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.canonical import canonicalize, cn_id_check_digit, luhn_ok
from core.hashing import keyed_hash

MB = 1_000_000
TARGET_MBS = 30.0
TARGET_BYTES_PER_VALUE = 16.0
TARGET_RETRO_S = 10.0

# --------------------------------------------------------------------------- value generators

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞鑫宇浩然子轩梓涵一诺欣怡思雨"
_FIRST = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "daniel",
    "nancy",
    "matthew",
    "lisa",
    "anthony",
    "betty",
    "mark",
    "helen",
    "hans",
    "greta",
    "lukas",
    "sophie",
    "oliver",
    "amelia",
    "harry",
    "isla",
    "jack",
    "emily",
]
_LAST = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "thompson",
    "white",
    "harris",
    "clark",
    "lewis",
    "walker",
    "hall",
    "mueller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "meyer",
    "wagner",
    "evans",
    "roberts",
    "wright",
]
_DOMAINS = [
    "gmail.com",
    "qq.com",
    "163.com",
    "126.com",
    "hotmail.com",
    "yahoo.com",
    "outlook.com",
    "sina.com",
    "foxmail.com",
    "web.de",
]
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "it",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "over",
    "new",
    "sound",
    "take",
    "only",
    "little",
    "work",
    "know",
    "place",
    "year",
    "live",
    "me",
    "back",
    "give",
    "most",
    "very",
    "after",
    "thing",
    "our",
    "just",
    "name",
    "good",
    "sentence",
    "man",
    "think",
    "say",
    "great",
    "where",
    "help",
    "through",
    "much",
    "before",
    "line",
    "right",
    "too",
    "mean",
    "old",
    "any",
    "same",
    "tell",
    "boy",
    "follow",
    "came",
    "want",
    "show",
    "also",
    "around",
    "form",
    "three",
    "small",
    "set",
    "put",
    "end",
    "does",
    "another",
    "well",
]
_CN_TEXT = (
    "我们今天讨论的是关于数据安全的问题随着互联网的发展越来越多的企业开始重视用户隐私保护这是一个"
    "非常重要的话题在过去的几年里很多公司都遭遇了数据泄露事件给用户带来了巨大的损失因此我们需要"
    "建立完善的安全体系加强对员工的培训提高安全意识同时也要采用先进的技术手段来防范各种攻击"
)
_CN_PUNCT = "，。、；！？"


def _rand_digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def gen_email(rng: random.Random) -> str:
    user = rng.choice(_FIRST) + rng.choice(("", ".", "_")) + rng.choice(_LAST)[: rng.randint(1, 6)]
    return f"{user}{rng.randrange(10_000)}@{rng.choice(_DOMAINS)}"


def gen_cn_mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{_rand_digits(rng, 9) if rng.random() < 0.9 else '0' + _rand_digits(rng, 8)}"


def gen_card(rng: random.Random) -> str:
    body = rng.choice(("4", "51", "62")) + str(rng.randrange(10**13)).zfill(14)
    body = body[:15]
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("no Luhn digit")


def gen_cn_id(rng: random.Random) -> str:
    first17 = (
        f"{rng.choice((11, 31, 44, 51, 33))}{rng.randrange(10_000):04d}"
        f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(1000):03d}"
    )
    return first17 + cn_id_check_digit(first17)


def gen_cn_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))


def gen_en_name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST).title()} {rng.choice(_LAST).title()}"


def gen_password(rng: random.Random) -> str:
    return "".join(
        rng.choice("abcdefghijkmnpqrstuvwxyz0123456789ABCDEFGH!") for _ in range(rng.randint(6, 12))
    )


def gen_dob(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)


def fmt_cn_mobile(rng: random.Random, number: str) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if style == 1:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style == 2:
        return f"+86{number}"
    return number


@dataclass
class Person:
    email: str
    phone: str  # CN national mobile
    card: str
    cn_id: str
    name: str
    dob: tuple[int, int, int]


def gen_person(rng: random.Random) -> Person:
    cn = rng.random() < 0.6
    return Person(
        email=gen_email(rng),
        phone=gen_cn_mobile(rng),
        card=gen_card(rng),
        cn_id=gen_cn_id(rng),
        name=gen_cn_name(rng) if cn else gen_en_name(rng),
        dob=gen_dob(rng),
    )


# --------------------------------------------------------------------------- posting formats


def _combo(rng: random.Random, p: Person) -> str:
    sep = rng.choice(":;|")
    left = p.email if rng.random() < 0.85 else fmt_cn_mobile(rng, p.phone)
    return f"{left}{sep}{gen_password(rng)}"


_CSV_HEADERS = ["姓名", "手机号", "身份证号", "邮箱", "银行卡", "出生日期"]


def _csv_row(rng: random.Random, p: Person, sep: str) -> str:
    y, m, d = p.dob
    return sep.join((p.name, p.phone, p.cn_id, p.email, p.card, f"{y}-{m:02d}-{d:02d}"))


def _sql_row(rng: random.Random, p: Person, i: int) -> str:
    name = p.name.replace("'", "''")
    return f"({i},'{name}','{p.email}','{p.phone}','{p.cn_id}','{gen_password(rng)}')"


def _json_row(rng: random.Random, p: Person, i: int) -> str:
    y, m, d = p.dob
    row = {
        "id": i,
        "name": p.name,
        "email": p.email,
        "mobile": p.phone,
        "card": p.card,
        "dob": f"{y}/{m}/{d}",
    }
    return json.dumps(row, ensure_ascii=rng.random() < 0.5)


def _kv_row(rng: random.Random, p: Person, i: int) -> str:
    return (
        f"2024-05-{rng.randint(1, 28):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z INFO "
        f"req={rng.getrandbits(48):x} user={p.email.split('@')[0]} email={p.email} "
        f"ip=10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} phone=+86{p.phone} status=200"
    )


def _chat_row(rng: random.Random, p: Person, i: int) -> str:
    y, m, d = p.dob
    return (
        f"【出售】 姓名：{p.name} 电话：{fmt_cn_mobile(rng, p.phone)} 身份证：{p.cn_id} "
        f"生日：{y}年{m}月{d}日 需要的私聊 TG@seller{rng.randrange(100)}"
    )


def _code_line(rng: random.Random, i: int) -> str:
    w = rng.sample(_WORDS, 4)
    shapes = (
        f"    def {w[0]}_{w[1]}(self, {w[2]}: int = {rng.randrange(100)}) -> None:",
        f"        {w[0]} = self.{w[1]}.get('{w[2]}', {rng.randrange(1000)})",
        f"        if {w[0]} > {rng.randrange(64)} and not {w[1]}:  # {w[2]} {w[3]}",
        f"            return [{w[0]} for {w[1]} in range({rng.randrange(10)}, {rng.randrange(99)})]",
        f"import {w[0]}.{w[1]} as {w[2]}",
        f'    log.info("{w[0]} %s {w[1]}", {w[2]}.{w[3]})',
        "",
    )
    return shapes[i % len(shapes)]


def _prose_line(rng: random.Random, i: int) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 30))
    return (
        " ".join(words).capitalize()
        + rng.choice((".", ",", "?", "!"))
        + (f" In {rng.randint(1990, 2024)} about {rng.randrange(1000)} people came." if i % 5 == 0 else "")
    )


def _cn_prose_line(rng: random.Random, i: int) -> str:
    parts = []
    for _ in range(rng.randint(3, 8)):
        start = rng.randrange(len(_CN_TEXT) - 20)
        parts.append(_CN_TEXT[start : start + rng.randint(5, 18)])
    text = "".join(p + rng.choice(_CN_PUNCT) for p in parts)
    return text + (f"共{rng.randrange(1000)}人参加。" if i % 4 == 0 else "")


def _log_line(rng: random.Random, i: int) -> str:
    return (
        f"2024-05-{rng.randint(1, 28):02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d},"
        f"{rng.randrange(1000):03d} {rng.choice(('INFO', 'WARN', 'DEBUG'))} [worker-{rng.randrange(8)}] "
        f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)} took {rng.randrange(5000)}ms status={rng.choice((200, 404, 500))} "
        f"bytes={rng.randrange(10**6)} path=/api/v1/{rng.choice(_WORDS)}/{rng.randrange(10**5)}"
    )


DENSE = ("combo", "csv", "tsv", "sql", "jsonl", "kv", "chat")
BENIGN = ("code", "prose", "cn_prose", "log")
# Share of the corpus bytes per format (sums to 1).
MIX = {
    "combo": 0.12, "csv": 0.08, "tsv": 0.04, "sql": 0.12, "jsonl": 0.11, "kv": 0.11, "chat": 0.08,
    "code": 0.10, "prose": 0.11, "cn_prose": 0.08, "log": 0.05,
}  # fmt: skip


def posting_text(fmt: str, rng: random.Random, size: int, planted: list[Person]) -> str:
    """One posting of about `size` UTF-8 bytes in format `fmt`, with the `planted` people among its rows."""
    lines: list[str] = []
    total = 0
    slots = (
        set(rng.sample(range(max(1, size // 120)), min(len(planted), max(1, size // 120))))
        if planted
        else set()
    )
    todo = list(planted) if fmt in DENSE else []
    i = 0
    if fmt in ("csv", "tsv"):
        lines.append(("," if fmt == "csv" else "\t").join(_CSV_HEADERS))
    if fmt == "sql":
        lines.append("-- MySQL dump 10.13\nINSERT INTO `members` VALUES ")
    while total < size or todo:
        if fmt in DENSE:
            p = todo.pop() if todo and (i in slots or total >= size) else gen_person(rng)
            if fmt == "combo":
                line = _combo(rng, p)
            elif fmt in ("csv", "tsv"):
                line = _csv_row(rng, p, "," if fmt == "csv" else "\t")
            elif fmt == "sql":
                line = _sql_row(rng, p, i) + ("," if i % 50 else ";\nINSERT INTO `members` VALUES ")
            elif fmt == "jsonl":
                line = _json_row(rng, p, i)
            elif fmt == "kv":
                line = _kv_row(rng, p, i)
            else:
                line = _chat_row(rng, p, i)
        else:
            line = {"code": _code_line, "prose": _prose_line, "cn_prose": _cn_prose_line, "log": _log_line}[
                fmt
            ](rng, i)
        lines.append(line)
        total += len(line.encode("utf-8")) + 1
        i += 1
    return "\n".join(lines) + "\n"


def person_fields(p: Person) -> dict[str, str]:
    """The raw registered fields of a planted person (as a company's CSV would hold them)."""
    y, m, d = p.dob
    return {
        "email": p.email,
        "phone": p.phone,
        "card": p.card,
        "cn_id": p.cn_id,
        "name": p.name,
        "dob": f"{y}-{m:02d}-{d:02d}",
    }


def build_corpus(
    total_bytes: int, posting_bytes: int, seed: int, planted_per_posting: int
) -> tuple[list[str], list[Person]]:
    """Postings of every format in MIX proportions; returns them and the planted people."""
    rng = random.Random(seed)
    postings: list[str] = []
    planted: list[Person] = []
    for fmt, share in MIX.items():
        want = int(total_bytes * share)
        made = 0
        while made < want:
            size = min(posting_bytes, want - made)
            people = [gen_person(rng) for _ in range(planted_per_posting)] if fmt in DENSE else []
            planted.extend(people)
            text = posting_text(fmt, rng, size, people)
            postings.append(text)
            made += len(text.encode("utf-8"))
    rng.shuffle(postings)
    return postings, planted


# --------------------------------------------------------------------------- registered values


def registered_hashes(key: bytes, count: int, planted: list[Person], seed: int) -> list[str]:
    """`count` keyed hashes: the planted people's canonical fields first, then synthetic canonical values."""
    out: list[str] = []
    for p in planted:
        for field_type, raw in person_fields(p).items():
            canonical = canonicalize(field_type, raw, "CN")
            if canonical is not None:
                out.append(keyed_hash(key, field_type, canonical))
    rng = random.Random(seed)
    kinds = ("email", "phone", "card", "cn_id", "name")
    i = len(out)
    base = rng.randrange(10**6)
    while len(out) < count:
        kind = kinds[i % 5]
        if kind == "email":
            canonical = f"user{base + i}.{i % 977}@registered-{i % 9973}.example"
        elif kind == "phone":
            canonical = f"+86199{(base * 7919 + i) % 10**8:08d}"
        elif kind == "card":
            canonical = f"9{(base + i) % 10**15:015d}"
        elif kind == "cn_id":
            canonical = f"99{(base + i) % 10**15:015d}X"
        else:
            canonical = f"registered name {base + i}"
        out.append(keyed_hash(key, kind, canonical))
        i += 1
    return out


# --------------------------------------------------------------------------- the naive baseline

_NAIVE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    ("phone", re.compile(r"(?:\+|00)?\d[\d \-()]{6,18}\d")),
    ("card", re.compile(r"\b(?:\d[ \-]?){12,19}\b")),
    ("cn_id", re.compile(r"\b\d{17}[\dXx]\b")),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("dob", re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b")),
]


def naive_scan(text: str, key: bytes, registered: set[str]) -> int:
    """One Python regex per type over the whole text, canonicalise, keyed hash, set lookup."""
    hits = 0
    for field_type, pattern in _NAIVE_PATTERNS:
        for match in pattern.finditer(text):
            canonical = canonicalize(field_type, match.group(), "CN")
            if canonical is not None and keyed_hash(key, field_type, canonical) in registered:
                hits += 1
    return hits


# --------------------------------------------------------------------------- measurements


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def set_bytes_per_value(hexes: list[str], sample: int) -> float:
    """Memory of a Python set of `sample` hex strings per value: the strings plus the set's table."""
    part = hexes[:sample]
    strings = sum(sys.getsizeof(h) for h in part)
    return (strings + sys.getsizeof(set(part))) / len(part)


@dataclass
class Row:
    what: str
    ours: str
    naive: str
    target: str
    note: str = ""


def run(scale: float, workdir: Path, corpus_mb: float | None = None) -> list[Row]:
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.settings import Settings
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import add_records
    from pipelines.detection.candidates import CandidateIndex
    from pipelines.detection.engine import DbHashLookup, Detector, WatchSnapshot
    from pipelines.detection.extract import extract_candidates
    from pipelines.detection.index import MatchIndex, prefixes_of

    rows: list[Row] = []
    corpus_bytes = int(corpus_mb * MB) if corpus_mb else int(200 * MB * scale)
    n_registered = int(10_000_000 * scale)
    n_postings = int(1_000_000 * scale)
    n_new = int(100_000 * scale)

    # --- corpus and registered values
    t, (postings, planted) = timed(lambda: build_corpus(corpus_bytes, 512_000, 7, 4))
    size = sum(len(p.encode("utf-8")) for p in postings)
    print(
        f"corpus: {size / MB:.1f} MB in {len(postings)} postings, {len(planted)} planted records ({t:.1f}s)",
        flush=True,
    )
    settings = Settings(home=workdir / "home")
    db = open_database(settings)
    key = load_or_create_key(settings.key_path)
    t, hexes = timed(lambda: registered_hashes(key, n_registered, planted, 11))
    print(f"registered: {len(hexes):,} keyed hashes ({t:.1f}s)", flush=True)

    # --- only the planted records go to the database (so hits resolve); the index holds all values
    add_tenant(db, "acme", [], ["CN"])
    lines = []
    for i, p in enumerate(planted):
        fields = {}
        for field_type, raw in person_fields(p).items():
            canonical = canonicalize(field_type, raw, "CN")
            if canonical is not None:
                fields[field_type] = keyed_hash(key, field_type, canonical)
        lines.append(json.dumps({"record_key": f"p{i}", "fields": fields, "v": 1, "region": "CN"}))
    records_file = workdir / "planted.jsonl"
    records_file.write_text("\n".join(lines) + "\n")
    add_records(db, "acme", records_file)
    index = MatchIndex(settings.index_dir)
    index.sync(db)

    # (c) build: index (prefixes, sort/unique, write) vs Python set
    t_index, _ = timed(lambda: index.merge(prefixes_of(hexes)))
    index_count = len(index)
    index_bytes = index.path.stat().st_size
    gc.collect()
    t_set, registered = timed(lambda: set(hexes))
    sample = min(1_000_000, len(hexes))
    set_per_value = set_bytes_per_value(hexes, sample)

    # (a) scan throughput of the real path
    detector = Detector(key, DbHashLookup(db, index), WatchSnapshot.load(db))
    # The baseline's 10 M strings stay alive for later; keep the collector from re-walking them during
    # the timed scan (it would charge their cost to the path under test).
    gc.collect()
    gc.freeze()
    # What a worker does once at start (map the index, build its directory, compile the phone automata),
    # done before the clock starts: the figure is the steady scanning speed of a running worker.
    detector.detect("warm-up 13800138000 a@b.example 2024-05-12 10:30:45")
    found: set[str] = set()
    started = time.perf_counter()
    for text in postings:
        for finding in detector.detect(text).findings:
            if finding.kind == "record" and finding.record_key:
                found.add(finding.record_key)
    t_scan = time.perf_counter() - started
    recall = len(found) / max(1, len(planted))
    # naive baseline on a slice when the corpus is big (it is slow)
    slice_bytes = min(size, int(20 * MB))
    naive_texts, taken = [], 0
    for text in postings:
        if taken >= slice_bytes:
            break
        naive_texts.append(text)
        taken += len(text.encode("utf-8"))
    # the hashed scan alone (native scanner + extract.py for the lines it defers), whole corpus
    from pipelines.detection import fastscan

    hasher = fastscan.HashedScanner(key, ("CN",))
    started = time.perf_counter()
    n_pairs = 0
    for text in postings:
        n_pairs += len(hasher.scan(text).pairs)
    t_hashed = time.perf_counter() - started
    # extract.py alone (pure Python), on a slice: it is the reference the native scanner is tested against
    py_texts, py_taken = [], 0
    for text in naive_texts:
        if py_taken >= min(slice_bytes, 5 * MB):
            break
        py_texts.append(text)
        py_taken += len(text.encode("utf-8"))
    started = time.perf_counter()
    n_cands = 0
    for text in py_texts:
        for _ in extract_candidates(text, ("CN",)):
            n_cands += 1
    t_extract = time.perf_counter() - started

    started = time.perf_counter()
    naive_hits = sum(naive_scan(text, key, registered) for text in naive_texts)
    t_naive = time.perf_counter() - started
    slice_note = "whole corpus" if taken >= size else f"on the first {taken / MB:.0f} MB slice"

    rows.append(
        Row(
            "(a) scan MB/s per core",
            f"{size / MB / t_scan:.1f}",
            f"{taken / MB / t_naive:.1f}",
            f">= {TARGET_MBS:.0f}",
            f"ours: extract+hash+index+DB over {size / MB:.0f} MB (after one warm-up call), "
            f"record recall {recall:.3f}; "
            f"naive {slice_note} ({naive_hits} raw hits)",
        )
    )
    stats = hasher._native.stats() if hasher.native else {}
    rows.append(
        Row(
            "    hashed scan alone MB/s",
            f"{size / MB / t_hashed:.1f}",
            "",
            "",
            f"{'native' if hasher.native else 'pure Python'} scanner ({fastscan.sha_implementation()} SHA-256), "
            f"{n_pairs / (size / MB):,.0f} (hash, line) pairs per MB; phone numbers ruled out by the automata "
            f"{stats.get('phones_ruled_out', 0):,}, decided by them {stats.get('phones_decided', 0):,}, asked to "
            f"libphonenumber {stats.get('phones_asked', 0):,}",
        )
    )
    rows.append(
        Row(
            "    extract.py alone MB/s",
            f"{py_taken / MB / t_extract:.1f}",
            "",
            "",
            f"the pure-Python reference extractor, {n_cands / (py_taken / MB):,.0f} candidates per MB, "
            f"first {py_taken / MB:.0f} MB",
        )
    )
    rows.append(
        Row(
            "(b) bytes per registered value",
            f"{index_bytes / index_count:.1f}",
            f"{set_per_value:.1f}",
            f"<= {TARGET_BYTES_PER_VALUE:.0f}",
            f"index file / {index_count:,} values; set: sys.getsizeof of strings + table on a {sample:,} sample (strings + set), "
            "extrapolated",
        )
    )
    rows.append(
        Row(
            f"(c) build for {len(hexes):,} values (s)",
            f"{t_index:.2f}",
            f"{t_set:.2f}",
            "",
            "index: hex->u64, sort/unique, write; set: set(hex strings)",
        )
    )
    registered, hexes = set(), []  # free ~1 GB before the retro-match part
    gc.collect()

    # (d) retro-match: 1M stored postings x ~20 candidates, 100k new records (~3 hashes each)
    rng = np.random.default_rng(5)
    cand_dir = workdir / "candidates"
    cindex = CandidateIndex(cand_dir)
    per_posting = 20
    chunk = 100_000
    new_prefixes = rng.integers(1, 2**63, size=n_new * 3, dtype=np.uint64)
    planted_in = rng.choice(n_postings, size=min(1000, n_postings), replace=False)
    planted_set = set(int(x) for x in planted_in)
    naive_lists: list[list[int]] = []
    naive_slice = min(n_postings, 100_000)
    started = time.perf_counter()
    for start in range(0, n_postings, chunk):
        count = min(chunk, n_postings - start)
        block = rng.integers(1, 2**63, size=(count, per_posting), dtype=np.uint64)
        for j in range(count):
            pid = start + j
            if pid in planted_set:
                block[j, 0] = new_prefixes[pid % new_prefixes.shape[0]]
            blob = block[j].astype(">u8").repeat(2).tobytes()  # 16-byte hashes: prefix twice
            cindex.add(pid + 1, blob)
            if pid < naive_slice:
                naive_lists.append(block[j].tolist())
        cindex.flush()
    t_build_cidx = time.perf_counter() - started
    t_retro, hit_postings = timed(lambda: cindex.postings_with(new_prefixes))
    wanted = set(new_prefixes.tolist())
    started = time.perf_counter()
    naive_found = [pid for pid, cands in enumerate(naive_lists) if any(c in wanted for c in cands)]
    t_naive_retro = (time.perf_counter() - started) * (n_postings / naive_slice)
    assert isinstance(hit_postings, set)
    rows.append(
        Row(
            f"(d) retro-match {n_new:,} records / {n_postings:,} postings (s)",
            f"{t_retro:.2f}",
            f"{t_naive_retro:.2f}",
            f"< {TARGET_RETRO_S:.0f}",
            f"{len(hit_postings)} postings hit (1 planted per ~{n_postings // len(planted_in)}); candidate index "
            f"of {n_postings * per_posting:,} pairs built in {t_build_cidx:.0f}s; naive: per-posting list scan "
            f"against a set of the new prefixes on {naive_slice:,} postings, extrapolated "
            f"({len(naive_found)} hits in the slice)",
        )
    )
    return rows


# --------------------------------------------------------------------------- the scan path (issue 12)
#
# What a user runs: `leaksentinel scan --json` (normalise, detect, findings; the fingerprint only with
# --store, which needs it) with every watch kind registered, on the mixed corpus, beside a naive per-line
# regex monitor in the same run; and the same with the fingerprint, as `scan --store` computes it.

LEAK_TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
CONFIDENTIAL = (
    "Project Falcon quarterly plan: the acquisition of the northern distribution network closes in "
    "the third quarter; the board approved a budget of 48 million for the integration, and the "
    "pricing committee will raise list prices by seven percent once the merger is announced. "
    "猎鹰项目季度计划：北方分销网络的收购将在第三季度完成，董事会批准了四千八百万的整合预算。"
)
WATCH_DOMAINS = ("acme.example", "qq.com", "initech.example")  # qq.com: a watched domain the dumps name
WATCH_KEYWORDS = ("project falcon", "数据泄露", "initech payroll")
WATCH_REGEXES = (r"ACME-\d{6}", r"status=500 bytes=\d{3}\b", r"TG@seller9\d\b")

# A naive per-line paste monitor: one Python regex per analyzer (personal data, card brands, keys and
# tokens, infrastructure), every analyzer on every line, plus the tenants' keywords and regexes.
_NAIVE_MONITOR = [
    re.compile(p)
    for p in (
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}",
        r"\b4[0-9]{12}(?:[0-9]{3})?\b",
        r"\b5[1-5][0-9]{14}\b",
        r"\b3[47][0-9]{13}\b",
        r"\b6(?:011|5[0-9]{2})[0-9]{12}\b",
        r"\b62[0-9]{14,17}\b",
        r"\b(?:\d[ \-]?){13,19}\b",
        r"\b\d{17}[\dXx]\b",
        r"\b\d{3}-\d{2}-\d{4}\b",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}\b",
        r"(?:\+|00)?\d[\d \-()]{6,18}\d",
        r"\b1[3-9]\d{9}\b",
        r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",
        r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
        r"\b[0-9a-fA-F]{32}\b",
        r"\b[0-9a-fA-F]{40}\b",
        r"\b[0-9a-fA-F]{64}\b",
        r"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}",
        r"AKIA[0-9A-Z]{16}",
        r"(?i)aws(.{0,20})?['\"][0-9a-zA-Z/+]{40}['\"]",
        r"AIza[0-9A-Za-z\-_]{35}",
        r"gh[pousr]_[A-Za-z0-9]{36}",
        r"xox[baprs]-[0-9A-Za-z\-]{10,48}",
        r"sk_live_[0-9a-zA-Z]{24}",
        r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----",
        r"eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+",
        r"(?i)(?:password|passwd|pwd)\s*[:=]\s*\S+",
        r"(?i)(?:mysql|postgres(?:ql)?|mongodb)://\S+",
        r"\b[a-z2-7]{16,56}\.onion\b",
        r"\b[13][a-km-zA-HJ-NP-Z1-9]{25,34}\b",
        r"https?://[^\s\"'<>]+",
        *WATCH_REGEXES,
    )
]


def naive_monitor(text: str) -> int:
    """Every analyzer on every line, and the watched keywords and domains by `in`: the matches' count."""
    hits = 0
    for line in text.split("\n"):
        lowered = line.lower()
        for pattern in _NAIVE_MONITOR:
            for _ in pattern.finditer(line):
                hits += 1
        for needle in (*WATCH_KEYWORDS, *WATCH_DOMAINS):
            if needle in lowered:
                hits += 1
    return hits


def format_texts(seed: int, sizes: tuple[int, ...] = (300, 4000), plant_seed: int = 12) -> list[str]:
    """One posting of every format in `MIX` per size (dense formats with a planted person), with every watch
    kind planted (`plant_watched`): the texts the differential tests of the search extractors read."""
    rng = random.Random(seed)
    texts = []
    for fmt in MIX:
        for size in sizes:
            people = [gen_person(rng)] if fmt in DENSE else []
            texts.append(posting_text(fmt, rng, size, people))
    return plant_watched(texts, plant_seed)


def plant_watched(postings: list[str], seed: int) -> list[str]:
    """Every tenth posting gets a leak of each watch kind: an address and a token on a watched domain,
    a keyword, a regex match and a confidential passage, at a random line."""
    rng = random.Random(seed)
    out = []
    for i, text in enumerate(postings):
        if i % 10 == 0:
            t = i // 10 % 3
            block = (
                f"ops{i}@{WATCH_DOMAINS[t]}:hunter2\n{WATCH_KEYWORDS[t]} status ACME-{rng.randrange(10**6):06d}\n"
                f"GITHUB_TOKEN={LEAK_TOKEN} # {WATCH_DOMAINS[t]} ci\n{CONFIDENTIAL}\n"
            )
            lines = text.split("\n")
            at = rng.randrange(len(lines))
            text = "\n".join([*lines[:at], block, *lines[at:]])
        out.append(text)
    return out


def setup_scan_home(workdir: Path, planted: list[Person]) -> Path:
    """A home with three tenants, each registering records, a domain, a keyword, a regex and a document."""
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.settings import Settings
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import (
        add_document_watch,
        add_keyword_watch,
        add_records,
        add_regex_watch,
    )
    from pipelines.detection.documents import document_fingerprint

    home = workdir / "scan-home"
    settings = Settings(home=home)
    db = open_database(settings)
    key = load_or_create_key(settings.key_path)
    for t, domain in enumerate(WATCH_DOMAINS):
        tenant_id = add_tenant(db, f"tenant{t}", [domain], ["CN"])["id"]
        lines = []
        for i, p in enumerate(planted[t::3]):
            fields = {}
            for field_type, raw in person_fields(p).items():
                canonical = canonicalize(field_type, raw, "CN")
                if canonical is not None:
                    fields[field_type] = keyed_hash(key, field_type, canonical)
            lines.append(json.dumps({"record_key": f"t{t}-p{i}", "fields": fields, "v": 1, "region": "CN"}))
        records = workdir / f"records{t}.jsonl"
        records.write_text("\n".join(lines) + "\n")
        add_records(db, tenant_id, records)
        add_keyword_watch(db, tenant_id, WATCH_KEYWORDS[t])
        add_regex_watch(db, tenant_id, WATCH_REGEXES[t])
        document = workdir / f"document{t}.json"
        text = CONFIDENTIAL if t == 0 else " ".join(random.Random(t).choices(_WORDS, k=400))
        document.write_text(json.dumps(document_fingerprint(text, name=f"plan{t}", key=key)) + "\n")
        add_document_watch(db, tenant_id, document, f"plan{t}")
    db.engine.dispose()
    return home


def _cli_cpu(home: Path, paths: list[Path]) -> tuple[float, list[str]]:
    """Child CPU seconds of one `leaksentinel scan --json PATHS`, and its findings' kinds."""
    env = dict(os.environ, LEAKSENTINEL_HOME=str(home))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-m", "leaksentinel", "scan", "--json", *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, [json.loads(line)["kind"] for line in out.stdout.splitlines() if line.strip()]


#: Findings per kind of the last in-process scan (printed with the figures).
KINDS_SEEN: dict[str, int] = {}


def scan_path_once(home: Path, files: list[Path], texts: list[str], size: int) -> dict[str, float]:
    """One measurement of every figure (MB per CPU-second), all on the same corpus in this run."""
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.settings import Settings
    from leaksentinel.scanning import scan_paths
    from pipelines.detection.engine import Detector
    from pipelines.normalize import normalize_text

    settings = Settings(home=home)
    tiny = files[0].parent / "tiny.txt"
    tiny.write_text("warm-up 13800138000 a@b.example\n")
    figures: dict[str, float] = {}
    # (1) the scan path in process: scan_paths is what `leaksentinel scan` calls (normalise, detect, the
    # contract's finding objects; no fingerprint: only --store reads it); its start-up (open the database, map the index, load the
    # watches) is measured on a tiny file and taken off
    list(scan_paths(settings, [str(tiny)]))
    started = time.process_time()
    list(scan_paths(settings, [str(tiny)]))
    startup = time.process_time() - started
    gc.collect()
    started = time.process_time()
    found = list(scan_paths(settings, [str(f) for f in files]))
    figures["scan"] = size / MB / max(1e-9, time.process_time() - started - startup)
    figures["kinds"] = float(len({f["kind"] for f in found}))
    KINDS_SEEN.update(
        {kind: sum(1 for f in found if f["kind"] == kind) for kind in {f["kind"] for f in found}}
    )
    figures["findings"] = float(len(found))
    # (1b) the same stages with the fingerprint (content hash, SimHash), as `scan --store` runs them
    from core.posting import PostingDraft
    from pipelines.ingest import Ingest
    from pipelines.store import LOCAL_SOURCE

    with Ingest(settings, open_database(settings)) as ingest:
        ingest.detect(PostingDraft(source=LOCAL_SOURCE, url=str(tiny), raw=tiny.read_bytes()))
        gc.collect()
        started = time.process_time()
        for f in files:
            draft = PostingDraft(source=LOCAL_SOURCE, url=str(f), raw=f.read_bytes(), title=f.name)
            ingest.detect(draft, fingerprint=True)
            [finding.as_json(str(f)) for finding in draft.findings]
        figures["scan_fingerprint"] = size / MB / (time.process_time() - started)
    # (2) the Detector alone on the normalised texts
    db = open_database(settings)
    detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
    normalised = [normalize_text(t, settings.max_posting_bytes) for t in texts]
    detector.detect("warm-up 13800138000 a@b.example")
    started = time.process_time()
    for text in normalised:
        detector.detect(text)
    figures["detector"] = size / MB / (time.process_time() - started)
    db.engine.dispose()
    # (3) the naive per-line regex monitor on the same texts
    started = time.process_time()
    figures["naive_hits"] = float(sum(naive_monitor(t) for t in texts))
    figures["naive"] = size / MB / (time.process_time() - started)
    # (4) the CLI as a subprocess: start-up (interpreter, imports, database, index) apart, as the median
    # of three runs on the tiny file (one start-up's noise is several percent of the figure)
    startup_cpu = statistics.median(_cli_cpu(home, [tiny])[0] for _ in range(3))
    cli_cpu, kinds = _cli_cpu(home, files)
    figures["cli_startup_s"] = startup_cpu
    figures["cli"] = size / MB / max(1e-9, cli_cpu - startup_cpu)
    figures["cli_with_startup"] = size / MB / cli_cpu
    figures["cli_findings"] = float(len(kinds))
    return figures


#: The stages of the scan path whose CPU time `stage_shares` reports: (label, module, owner, attribute).
#: Nested stages (the fold inside the watches) are listed apart; the shares then overlap.
_STAGES = (
    ("native candidate scan (_scanner)", "pipelines.detection.fastscan", "HashedScanner", "scan"),
    ("record listing", "pipelines.detection.engine", "Detector", "_records"),
    ("watched domains", "pipelines.detection.engine", "Detector", "_domain_candidates"),
    ("look-alikes", "pipelines.detection.engine", "Detector", "_lookalikes"),
    ("secrets", "pipelines.detection.engine", "Detector", "_secrets"),
    ("regex + secret Set pass", "pipelines.detection.engine", None, "block_matches"),
    ("fold for keywords + documents", "pipelines.detection.engine", None, "fold"),
    ("keywords", "pipelines.detection.keywords", "KeywordMatcher", "find"),
    ("regexes", "pipelines.detection.regexes", "RegexMatcher", "find"),
    ("documents (winnowing)", "pipelines.detection.documents", "DocumentMatcher", "find"),
    ("normalise", "pipelines.normalize", None, "normalize_text"),
    ("decode", "pipelines.normalize", None, "decode_bytes"),
)


def stage_shares(home: Path, files: list[Path]) -> list[tuple[str, float, float]]:
    """(stage, CPU seconds, share of the whole) of one in-process scan path run: each stage's function
    wrapped by a CPU-time counter for the run (what a profile shows, without cProfile's per-call cost)."""
    import importlib

    from core.settings import Settings
    from leaksentinel.scanning import scan_paths

    spent: dict[str, float] = {label: 0.0 for label, *_ in _STAGES}
    restore: list[tuple[object, str, object]] = []

    def timed_call(label: str, fn: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - started

        return call

    for label, module, owner, attribute in _STAGES:
        target: object = importlib.import_module(module)
        if owner is not None:
            target = getattr(target, owner)
        original = getattr(target, attribute)
        restore.append((target, attribute, original))
        setattr(target, attribute, timed_call(label, original))
    try:
        settings = Settings(home=home)
        list(scan_paths(settings, [str(files[0])]))  # warm-up: start-up is not a stage
        for label in spent:
            spent[label] = 0.0
        gc.collect()
        started = time.process_time()
        list(scan_paths(settings, [str(f) for f in files]))
        total = time.process_time() - started
    finally:
        for target, attribute, original in reversed(restore):
            setattr(target, attribute, original)
    rows = [(label, cpu, cpu / total) for label, cpu in spent.items()]
    rows.sort(key=lambda row: -row[1])
    return [("whole scan path", total, 1.0), *rows]


def scan_path_rows(workdir: Path, corpus_mb: float, runs: int, shares: bool = False) -> list[Row]:
    """The scan-path figures, each the median of `runs` runs, beside the naive monitor's."""
    postings, planted = build_corpus(int(corpus_mb * MB), 512_000, 17, 4)
    postings = plant_watched(postings, 3)
    size = sum(len(p.encode("utf-8")) for p in postings)
    home = setup_scan_home(workdir, planted)
    corpus = workdir / "scan-corpus"
    corpus.mkdir()
    files = []
    for i, text in enumerate(postings):
        path = corpus / f"posting{i:04d}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    cn = sum(len(p.encode("utf-8")) - len(p) for p in postings) / max(1, size)
    print(
        f"scan corpus: {size / MB:.1f} MB in {len(files)} postings ({cn:.0%} of bytes in multi-byte "
        f"characters), 3 tenants x (records, domain, keyword, regex, document) + built-in secrets",
        flush=True,
    )
    results = []
    for run in range(runs):
        figures = scan_path_once(home, files, postings, size)
        print(
            f"  run {run + 1}: scan {figures['scan']:.1f} (with the fingerprint {figures['scan_fingerprint']:.1f}), "
            f"detector {figures['detector']:.1f}, "
            f"CLI {figures['cli']:.1f} MB/CPU-s (start-up {figures['cli_startup_s']:.2f} CPU-s), "
            f"naive {figures['naive']:.1f} MB/CPU-s; {figures['findings']:.0f} findings of "
            f"{figures['kinds']:.0f} kinds",
            flush=True,
        )
        results.append(figures)
    if shares:
        print("  CPU per stage of one scan path run (shares of the whole; the fold is inside no other row):")
        for label, cpu, share in stage_shares(home, files):
            print(f"    {label:<34} {cpu:7.3f} s  {share:6.1%}")

    def med(name: str) -> float:
        return statistics.median(r[name] for r in results)

    note = f"median of {runs}; naive per-line monitor ({len(_NAIVE_MONITOR)} regexes) {med('naive'):.1f}"
    return [
        Row(
            "(e) scan path MB per CPU-s",
            f"{med('scan'):.1f}",
            f"{med('naive'):.1f}",
            f">= {TARGET_MBS:.0f}",
            f"scan_paths in process (normalise, detect, findings; the registered field types hashed), every watch kind, "
            f"{med('findings'):.0f} findings ({', '.join(f'{k} {n}' for k, n in sorted(KINDS_SEEN.items()))}); "
            f"{note}",
        ),
        Row(
            "    with the fingerprint MB per CPU-s",
            f"{med('scan_fingerprint'):.1f}",
            f"{med('naive'):.1f}",
            "",
            "the same stages, every candidate type hashed and the content hash + SimHash, as `scan --store` "
            "computes them (store apart)",
        ),
        Row(
            "    Detector alone MB per CPU-s",
            f"{med('detector'):.1f}",
            f"{med('naive'):.1f}",
            "",
            "Detector.detect on the normalised texts, every candidate type hashed (as a crawl keeps them)",
        ),
        Row(
            "    `leaksentinel scan --json` MB per CPU-s",
            f"{med('cli'):.1f}",
            f"{med('naive'):.1f}",
            f">= {TARGET_MBS:.0f}",
            f"subprocess, start-up excluded ({med('cli_startup_s'):.2f} CPU-s, median of 3 on a tiny file); "
            f"with start-up {med('cli_with_startup'):.1f}; {med('cli_findings'):.0f} findings",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/20 of every size")
    parser.add_argument(
        "--corpus-mb",
        type=float,
        default=None,
        help="scan corpus size in MB (other sizes stay full or --quick)",
    )
    parser.add_argument(
        "--scan-mb", type=float, default=20.0, help="size of the scan-path corpus in MB (default 20)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="scan-path runs; the median is printed (default 3)"
    )
    parser.add_argument(
        "--scan-only", action="store_true", help="only the scan path (e): no index, build or retro-match"
    )
    parser.add_argument(
        "--shares",
        action="store_true",
        help="also print each scan-path stage's share of the CPU time (one extra run)",
    )
    args = parser.parse_args(argv)
    scale = 0.05 if args.quick else 1.0
    print(
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}; scale {scale:g}"
        + (" (--quick)" if args.quick else ""),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="ls-bench-") as tmp:
        rows = [] if args.scan_only else run(scale, Path(tmp), args.corpus_mb)
        scan_mb = args.scan_mb * (0.25 if args.quick else 1.0)
        rows += scan_path_rows(Path(tmp), scan_mb, max(1, args.runs), shares=args.shares)
    width = max(len(r.what) for r in rows)
    print()
    print(f"{'measure':<{width}}  {'ours':>10}  {'naive':>10}  {'target':>8}  notes")
    print("-" * (width + 40))
    for r in rows:
        print(f"{r.what:<{width}}  {r.ours:>10}  {r.naive:>10}  {r.target:>8}  {r.note}")
    return 0


def iter_formats() -> Iterator[str]:
    """The corpus formats, for tests that want one posting of each."""
    yield from MIX


if __name__ == "__main__":
    raise SystemExit(main())
