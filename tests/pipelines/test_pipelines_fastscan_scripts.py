"""Latin-1, Cyrillic, kana, Hangul and full-width text read by the native scanner, as extract.py reads it.

Why: every line holding one character outside the native scanner's allowlist used to go back to the
Python reference (30-100x slower), so a French, Russian, Japanese or Korean dump ran at Python speed.
The scanner now takes these scripts' letters natively where NFKC and case folding are one character for
one (see the class comment in _native/scanner.c). Each class is checked three ways here:
- its characters have the properties that make the C port exact (checked against unicodedata and `re`);
- generated lines of its letters mixed with identifiers give the same (keyed hash, line) pairs as the
  Python reference, and stay native (no line handed back);
- the characters next to the classes, whose NFKC or case fold differ (ß, ﬁ, half-width kana, compatibility
  jamo, the kana sound marks, µ, ª, ¹...), are still handed back, and give the reference's pairs.
"""

from __future__ import annotations

import hmac
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import fold
from pipelines.detection import extract as ex
from pipelines.detection.fastscan import HashedScan, HashedScanner, candidates_on_lines, native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="native scanner not built")

KEY = bytes(range(32))
REGIONS = ("CN", "US", "FR", "DE", "RU", "JP", "KR")

LATIN1 = "".join(chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7))
# Polish, Czech, Turkish... letters; not ı İ ſ (re.IGNORECASE matches them to i, s), nor ĳ Ĳ ŀ Ŀ ŉ (NFKC)
LATIN_EXT_A = "".join(chr(c) for c in range(0x100, 0x180) if chr(c) not in "ıİſĳĲŀĿŉ")
CYRILLIC = "".join(chr(c) for c in range(0x400, 0x500) if not 0x482 <= c <= 0x489)
KANA = "".join(
    chr(c) for c in [*range(0x3041, 0x3097), 0x309D, 0x309E, *range(0x30A1, 0x30FB), 0x30FC, 0x30FD, 0x30FE]
)
HANGUL = "".join(chr(c) for c in range(0xAC00, 0xD7A4))
PUNCT = "«»–—・゠"
CLASSES = {"latin1": LATIN1, "latin_ext_a": LATIN_EXT_A, "cyrillic": CYRILLIC, "kana": KANA, "hangul": HANGUL}
# allowed before this change: ideographs, four CJK marks, full-width ASCII forms, the NFKC spaces
OLD_ALLOWED = (
    {*range(0x3400, 0x4DB6), *range(0x4E00, 0x9FF0), 0x3001, 0x3002, 0x3010, 0x3011}
    | set(range(0xFF01, 0xFF5F))
    | {0xA0, 0x2007, 0x202F, 0x3000}
)
NEW_ALLOWED = {ord(c) for c in LATIN1 + LATIN_EXT_A + CYRILLIC + KANA + HANGUL + PUNCT}
# next to the classes, but NFKC or the case fold is not one character for one: handed back
OUTSIDE = (
    "µªº¹²³¼×÷¨´¸\u0482\u0483\u0489ſİıĳǆΣς\u3099\u309a゛゜ゟヿㄱㅏ\u1100\u1161\u11a8ｶﾞｱﾟﬁﬀ\u212a\u212b‘’“”…·"
)

_WORD = re.compile(r"\w")
_DIGIT = re.compile(r"\d")


def _digest(field_type: str, canonical: str) -> bytes:
    message = f"{field_type}\x00{canonical}".encode("utf-8", "surrogatepass")
    return hmac.digest(KEY, message, "sha256")[:16]


def _reference(text: str, regions: tuple[str, ...]) -> set[tuple[bytes, int]]:
    ex._RUN_CACHE.clear()
    return {
        (_digest(c.field_type, c.canonical), c.line)
        for c in ex.extract_candidates(text, regions, deadline_s=600)
    }


def _pairs(scan: HashedScan) -> set[tuple[bytes, int]]:
    d = scan.digests
    return {(d[16 * i : 16 * i + 16], line) for i, line in np.asarray(scan.pairs).tolist()}


def _native(text: str, regions: tuple[str, ...]) -> tuple[set[tuple[bytes, int]], HashedScan]:
    ex._RUN_CACHE.clear()
    scan = HashedScanner(KEY, regions).scan(text, deadline_s=600)
    return _pairs(scan), scan


def _assert_same(text: str, regions: tuple[str, ...] = REGIONS, *, native: bool) -> None:
    expected = _reference(text, regions)
    got, scan = _native(text, regions)
    if got != expected:
        listed = {(c.field_type, c.canonical, c.line) for c in ex.extract_candidates(text, regions)}
        pytest.fail(f"{text!r}: native pairs differ (reference candidates {sorted(listed)})", pytrace=False)
    if native:
        assert scan.deferred_lines == 0, f"{text!r}: {scan.deferred_lines} lines handed back to Python"
        assert scan.python_lines == 0


# --------------------------------------------------------------------------- the classes' properties


@pytest.mark.parametrize("name", [*CLASSES, "punct"])
def test_class_characters_fold_one_for_one(name: str) -> None:
    """What makes the C port exact: NFKC-stable, one-character case fold that is NFKC-stable, a letter
    (\\w, not \\d, isalnum) or punctuation (category P, not \\w), printable, not combining."""
    chars = CLASSES.get(name, PUNCT)
    assert chars
    for c in chars:
        f = c.casefold()
        assert unicodedata.normalize("NFKC", c) == c, hex(ord(c))
        if c == "ß":  # the one letter whose fold is two: the C scanner writes "ss"
            assert f == fold(c) == "ss" and _WORD.match(c) and re.fullmatch(r"(?i)[a-z]", c) is None
            continue
        assert len(f) == 1 and unicodedata.normalize("NFKC", f) == f and f.casefold() == f, hex(ord(c))
        assert f == fold(c) and f in "".join(CLASSES.values()) + PUNCT, hex(ord(c))  # still native (Ÿ: ÿ)
        assert c.isprintable() and not c.isspace() and unicodedata.combining(c) == 0, hex(ord(c))
        assert _DIGIT.match(c) is None and not c.isdigit(), hex(ord(c))
        if name == "punct":
            assert unicodedata.category(c)[0] == "P" and _WORD.match(c) is None, hex(ord(c))
        else:
            assert unicodedata.category(c)[0] == "L" and c.isalnum() and _WORD.match(c), hex(ord(c))
            # no ASCII letter matches it under re.IGNORECASE (the dob and SQL hints are case-insensitive)
            assert re.fullmatch(r"(?i)[a-z]", c) is None, hex(ord(c))


@pytest.mark.parametrize("name", [*CLASSES])
def test_class_pairs_do_not_compose(name: str) -> None:
    """fold() of a value is the value folded per character only if no two characters compose."""
    chars = CLASSES[name]
    sample = chars if len(chars) < 300 else chars[::37]
    for a in sample + "aeAE":
        for b in sample:
            assert unicodedata.normalize("NFKC", a + b) == a + b, (hex(ord(a)), hex(ord(b)))
            assert fold(a + b) == fold(a) + fold(b)


def test_exactly_the_classes_stay_native() -> None:
    """Every BMP character after a delimiter: native iff in a class (or allowed before), else handed back."""
    points = [c for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    text = "\n".join(f"k:{chr(c)}" for c in points)
    scan = HashedScanner(KEY, ("CN",)).scan(text, deadline_s=600)
    assert len(np.frombuffer(scan.line_starts, dtype=np.uint32)) == len(points)
    allowed = OLD_ALLOWED | NEW_ALLOWED
    assert scan.deferred_lines == sum(1 for c in points if c not in allowed)
    # and per character, for the new classes and their neighbours
    for c in sorted(NEW_ALLOWED | {ord(x) for x in OUTSIDE if len(x) == 1}):
        if c in NEW_ALLOWED and 0xAC00 <= c <= 0xD7A3 and c % 61:
            continue  # a sample of the 11,172 syllables
        one = HashedScanner(KEY, ("CN",)).scan(f"k:{chr(c)}")
        assert one.deferred_lines == (0 if c in allowed else 1), hex(c)


@pytest.mark.parametrize("char", list(OUTSIDE))
def test_neighbours_of_the_classes_are_handed_back(char: str) -> None:
    text = f"Name: Jo{char}rg, mail jo{char}@ex{char}mple.de, tel +49 30 901820"
    _assert_same(text, native=False)
    _, scan = _native(text, REGIONS)
    assert scan.deferred_lines == 1


# --------------------------------------------------------------------------- differential, per class

IDENTIFIERS = [
    "alice@example.com", "Bob.Smith+x@Mail.Example.CO.UK", "a..b@example.com", "+86 138 0013 8000",
    "13800138000", "+33 6 12 34 56 78", "+7 912 345-67-89", "+81 90-1234-5678", "010-1234-5678",
    "+49 30 901820", "(650) 253-0000", "4111 1111 1111 1111", "5500-0000-0000-0004", "GB82WEST12345698765432",
    "DE89 3704 0044 0532 0130 00", "110105194912310021", "123-45-6789", "192.168.1.10", "1990-05-12",
    "12/05/1990", "12 Jan 1990", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "ABC123456", "hunter2", "P@ssw0rd!",
    "John Smith", "O'Brien", "user=", "key=value", "INSERT INTO users VALUES (", "'", ");", "１３８", "＠",
]  # fmt: skip
GLUE = [
    ":",
    ";",
    "|",
    ",",
    "\t",
    "  ",
    " ",
    "=",
    "@",
    ".",
    "-",
    "'",
    '"',
    "(",
    ")",
    "：",
    "，",
    "、",
    "\u3000",
]
SAMPLES = {
    "latin1": [
        "François",
        "Müller",
        "Hélène Dupré",
        "ÉTÉ",
        "Öztürk",
        "Ångström",
        "ÿ",
        "Ñandú",
        "Þór",
        "Straße",
        "GRÜSSE",
        "weiß",
        "ßß",
    ],
    "latin_ext_a": ["Łukasz", "Wałęsa", "Dvořák", "ŠKODA", "Ağaoğlu", "Şahin", "Łódź", "Ő", "ž"],
    "cyrillic": ["Иванов", "Пётр", "ЁЖИК", "Сергеев Олег", "Ґанна", "ђурђевић", "Ӏ", "пример"],
    "kana": ["ヤマダ", "タロウ", "さくら", "ハナコ", "ゔ", "ヴァ", "ゝゞ", "ー", "スズキ・イチロウ"],
    "hangul": ["김민수", "홍길동", "서울", "박지성", "가", "힣", "강남구"],
}


def _class_line(name: str) -> st.SearchStrategy[str]:
    chars = CLASSES[name]
    alphabet = chars if len(chars) < 400 else chars[::7] + "".join(SAMPLES[name])
    word = st.text(alphabet=alphabet, min_size=1, max_size=8)
    # identifiers written with the class's letters: IDN domains, local parts, labels, usernames
    mixed = st.builds(
        lambda w, x, tld: f"{w}@{x}.{tld}" if tld else w + x,
        word,
        word,
        st.sampled_from(["", "com", "de", "рф", "jp"]),
    )
    piece = st.one_of(
        word,
        word,
        st.sampled_from(SAMPLES[name]),
        st.sampled_from(IDENTIFIERS),
        st.sampled_from(GLUE),
        st.sampled_from(GLUE),
        st.sampled_from(PUNCT),
        st.from_regex(r"[0-9]{1,12}", fullmatch=True),
        mixed,
    )
    return st.lists(piece, min_size=1, max_size=14).map("".join)


def _check_class(lines: list[str]) -> None:
    _assert_same("\n".join(lines), native=True)


@pytest.mark.parametrize("name", [*CLASSES])
def test_generated_class_lines_match_reference_and_stay_native(name: str) -> None:
    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(lines=st.lists(_class_line(name), min_size=1, max_size=4))
    def run(lines: list[str]) -> None:
        _check_class(lines)

    run()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(*[_class_line(n) for n in CLASSES]), min_size=1, max_size=5))
def test_generated_mixed_script_lines_match_reference_and_stay_native(lines: list[str]) -> None:
    _check_class(["".join(lines), *lines])


# --------------------------------------------------------------------------- a probe corpus per class

CORPUS = {
    "latin1": [
        "Contact : François Lefèvre, e-mail francois.lefevre@exemple.fr, tél. +33 6 12 34 56 78",
        "Nom: Hélène Dupré; carte 4111 1111 1111 1111; née le 12/03/1985",
        "Élodie Gâteau <élodie@café.fr> mot de passe=ÉtéÇaVa2024",
        "« Réservé » – client: Noël Bézier, 06 12 34 56 78",
        "Kunde: Jürgen Müller; E-Mail: juergen.mueller@beispiel.de; Tel: +49 30 12345678",
        "Benutzer=Öztürk;Passwort=Grüße123;geb. 01.02.1990",
        "Straße: Königsallee 12, Köln; Karte 5500 0000 0000 0004; Name: Weiß",
    ],
    "latin_ext_a": [
        "Klient: Łukasz Wałęsa; e-mail lukasz.walesa@przykład.pl; tel. +48 512 345 678",
        "Jméno=Antonín Dvořák;email=antonin@příklad.cz;karta 4111 1111 1111 1111",
        "Müşteri: Ayşe Ağaoğlu, e-posta ayse@örnek.com.tr, GSM +90 532 123 45 67",
    ],
    "cyrillic": [
        "Клиент: Иванов Иван Иванович, почта ivanov@mail.ru, тел. +7 912 345-67-89",
        "Логин: Пётр_Смирнов; пароль: Ёжик2020; карта 4111111111111111",
        "ФИО=Сергеев Олег;email=oleg@пример.рф;phone=+79123456789",
    ],
    "kana": [
        "お問い合わせ：ヤマダ タロウ、メール yamada@example.jp、電話 +81 90-1234-5678",
        "ユーザー名: さくら; パスワード: ハナコ2024; カード 4111 1111 1111 1111",
        "氏名・カナ：スズキ・イチロウ, tel 03-1234-5678",
    ],
    "hangul": [
        "고객: 김민수, 이메일 minsu.kim@example.kr, 전화 +82 10-1234-5678",
        "아이디: 홍길동; 비밀번호: 서울2024; 카드 4111 1111 1111 1111",
        "이름=박지성;주소=서울시 강남구;phone=010-1234-5678",
    ],
    "fullwidth": [
        "電話：１３８００１３８０００、メール：ｔｅｓｔ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "ＩＤ　１１０１０５１９４９１２３１００２Ｘ",
    ],
}


@pytest.mark.parametrize("name", [*CORPUS])
def test_probe_corpus_stays_native_with_the_reference_candidates(name: str) -> None:
    text = "\n".join(CORPUS[name] * 20)
    expected = _reference(text, REGIONS)
    got, scan = _native(text, REGIONS)
    assert got == expected
    assert len(expected) >= 3 * len(CORPUS[name])  # the lines do hold candidates
    assert scan.deferred_lines == 0, f"{scan.deferred_lines} of {text.count(chr(10)) + 1} lines handed back"
    assert scan.python_lines == 0
    # the listing of hit lines (raw values for masking) agrees too, in extract.py's order
    numbers = {1, 2, len(CORPUS[name])}
    ex._RUN_CACHE.clear()
    listed = candidates_on_lines(text, numbers, REGIONS)
    reference = [c for c in ex.extract_candidates(text, REGIONS) if c.line in numbers]
    assert listed == reference
