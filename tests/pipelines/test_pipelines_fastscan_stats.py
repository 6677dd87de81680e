"""The scan counts the lines the native scanner hands back to Python; allowlisted text stays native.

Why: a native scanner that handed every line back would still give the right candidates (extract.py
reads what it defers), so only a count of the lines handed back can tell that the fast path is used.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from core.db import open_database
from core.hashing import load_or_create_key
from core.settings import load_settings
from pipelines.detection.engine import Detector
from pipelines.detection.fastscan import HashedScan, HashedScanner, native_available

KEY = bytes(range(32))
REGIONS = ("CN", "US")

# Plain ASCII dumps of every usual shape, Chinese chat (CJK ideographs and punctuation), and French,
# German, Russian, Japanese and Korean lines (Latin-1, Cyrillic, kana, Hangul: test_pipelines_fastscan_scripts.py).
ALLOWLISTED = "\n".join(
    [
        "jane.doe@acme.example:hunter2",
        "bob_smith@mail.example;Passw0rd!",
        "id,name,email,phone,card",
        "17,John Smith,john.smith@corp.example,+1 (415) 555-0132,4111 1111 1111 1111",
        "INSERT INTO users VALUES (42,'alice','alice@shop.example','13800138000','1990-04-12');",
        "2024-05-01T10:22:31Z INFO login ok user=carol@acme.example ip=203.0.113.9",
        "def connect(host='db.internal', port=5432):  # TODO",
        "    return psycopg.connect(f'postgresql://app@{host}:{port}/prod')",
        "SSN 078-05-1120  IBAN DE89 3704 0044 0532 0130 00",
        "出售客户数据，电话13912345678，身份证110101199003074578。",
        "联系：张伟 手机 138-0013-8000 邮箱 zhangwei@example.cn",
        "« Réservé » – client: Noël Bézier, élodie@café.fr, 06 12 34 56 78",
        "Kunde: Jürgen Müller; E-Mail: juergen.mueller@beispiel.de; Straße 12",
        "Клиент: Иванов Иван, почта ivanov@mail.ru, тел. +7 912 345-67-89",
        "ユーザー名: ヤマダ タロウ; メール yamada@example.jp; 電話 090-1234-5678",
        "고객: 김민수, 이메일 minsu.kim@example.kr, 전화 010-1234-5678",
        "",
        "   ",
        "-----",
    ]
    * 50
)


def _require_native() -> None:
    if not native_available():
        if os.environ.get("LEAKSENTINEL_TEST_REQUIRE_NATIVE") == "1":
            pytest.fail("the native scanner is not built")
        pytest.skip("the native scanner is not built here")


def _assert_stays_native(scan: HashedScan) -> None:
    assert scan.deferred_lines == 0, f"{scan.deferred_lines} lines handed back to Python"
    assert scan.python_lines == 0


def _digests(scan: HashedScan) -> set[tuple[bytes, int]]:
    out = set()
    for index, line in np.asarray(scan.pairs).tolist():
        out.add((scan.digests[index * 16 : (index + 1) * 16], line))
    return out


def test_allowlisted_text_stays_native() -> None:
    _require_native()
    scan = HashedScanner(KEY, REGIONS).scan(ALLOWLISTED)
    assert len(scan.digests) > 0
    _assert_stays_native(scan)


def test_other_lines_are_counted() -> None:
    _require_native()
    text = "Ελληνικά jane@acme.example\n" + '{"email": "x@acme.example", "phone": "13800138000"}\nplain\n'
    scan = HashedScanner(KEY, REGIONS).scan(text)
    assert scan.deferred_lines >= 1
    assert scan.python_lines <= scan.deferred_lines


class _HandsEverythingBack:
    """A native scanner that defers every line (the Python path then reads them all)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def scan(
        self, text: str, prepared: bool = False, deadline: float = 0.0, *rest: Any, **options: Any
    ) -> Any:
        if rest:  # listing given lines: pass through
            return self.real.scan(text, prepared, deadline, *rest, **options)
        _digests, _pairs, _deferred, partial, starts = self.real.scan(text, prepared, deadline, **options)
        return b"", b"", list(range(text.count("\n") + 1)), partial, starts


def test_a_scanner_that_hands_every_line_back_fails_the_check() -> None:
    """Same candidates (so today's differential tests pass), but the count gives it away."""
    _require_native()
    honest = HashedScanner(KEY, REGIONS)
    lazy = HashedScanner(KEY, REGIONS)
    lazy._native = _HandsEverythingBack(lazy._native)
    fast, slow = honest.scan(ALLOWLISTED), lazy.scan(ALLOWLISTED)
    assert _digests(fast) == _digests(slow)
    assert slow.deferred_lines == ALLOWLISTED.count("\n") + 1
    with pytest.raises(AssertionError):
        _assert_stays_native(slow)


def test_detection_result_and_detector_totals_carry_the_count() -> None:
    _require_native()
    settings = load_settings()
    detector = Detector.from_database(open_database(settings), load_or_create_key(settings.key_path))
    result = detector.detect(ALLOWLISTED)
    assert result.deferred_lines == 0 and result.python_lines == 0
    other = detector.detect("Ελληνικά line one\nplain\nनमस्ते again\n")
    assert other.deferred_lines == 2
    assert detector.stats.postings == 2
    assert detector.stats.deferred_lines == 2
    assert detector.stats.python_lines == other.python_lines
