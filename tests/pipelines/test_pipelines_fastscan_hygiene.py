"""Native scanner hygiene: a failed allocation is a MemoryError, never silently dropped candidates; the C
source builds clean with every warning on.

Why: `emit()` used to return -1 on memory exhaustion and every caller ignored it, so a scan under memory
pressure returned fewer candidates and no error: a missed leak nobody would see. The scanner's
`_fail_emits(n)` test hook makes the n-th candidate fail exactly where an allocation would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from pipelines.detection import fastscan
from pipelines.detection.fastscan import HashedScanner

pytestmark = pytest.mark.skipif(not fastscan.native_available(), reason="native scanner not built")

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "pipelines" / "detection" / "_native" / "scanner.c"
KEY = bytes(range(32))
TEXT = "\n".join(
    [
        "alice@example.com:hunter2",
        "张三,13800138000,11010519491231002X,zhangsan@qq.com,4111 1111 1111 1111",
        "身份证：110105 19491231 002X，IBAN gb82-west-1234-5698-7654-32，SSN 123 45 6789",
        "1,John Smith,john@example.com,(650) 253-0000,05/12/1990",
        '{"name": "李四", "phone": "+86 139 1234 5678", "card": "4111.1111.1111.1111"}',
        "INSERT INTO t VALUES (1,'bob','bob@example.com','1990年5月12日');",
        "ip=10.0.0.1 user=carol pw=Secr3t!",
    ]
)


def _pairs(scan: fastscan.HashedScan) -> set[tuple[bytes, int]]:
    d = scan.digests
    return {(d[16 * i : 16 * i + 16], line) for i, line in scan.pairs.tolist()}


def test_every_candidate_position_fails_as_memory_error_and_the_scanner_recovers() -> None:
    scanner = HashedScanner(KEY, ("CN", "US"))
    native = scanner._native
    assert native is not None
    expected = _pairs(scanner.scan(TEXT))
    emitted = 0
    for n in range(1, 400):
        native._fail_emits(n)
        try:
            scanner.scan(TEXT)
        except MemoryError:
            emitted = n
            # the next scan is whole again: no state was left half-written
            assert _pairs(scanner.scan(TEXT)) == expected
            continue
        native._fail_emits(0)
        break
    else:  # pragma: no cover - the text has fewer than 400 candidates
        pytest.fail("the hook never stopped firing")
    assert emitted >= 40, "every candidate of the text was a failure point"


def test_listing_candidates_fails_as_memory_error() -> None:
    scanner = HashedScanner(KEY, ("CN",))
    native = scanner._native
    assert native is not None
    native._fail_emits(3)
    with pytest.raises(MemoryError):
        scanner.hashed_candidates(TEXT, {2, 3})
    native._fail_emits(0)
    assert scanner.hashed_candidates(TEXT, {2, 3})


def test_failure_hook_rejects_non_integers() -> None:
    native = HashedScanner(KEY, ())._native
    assert native is not None
    with pytest.raises(TypeError):
        native._fail_emits("x")


def test_setup_builds_with_every_warning_and_no_suppression() -> None:
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '"pipelines.detection._scanner"' in setup
    # One Extension(...) built for every native module (setup.py's NATIVE): its flags are the scanner's.
    assert setup.count("Extension(") == 1
    flags = setup.split("extra_compile_args=", 1)[1].split("]", 1)[0]
    assert '"-Wall"' in flags and '"-Wextra"' in flags
    assert "-Wno-" not in setup


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "gcc")) is None, reason="no C compiler")
def test_scanner_compiles_without_warnings() -> None:
    """-Wall -Wextra -Werror: no dead function, unused parameter or missing initializer hides."""
    include = sysconfig.get_paths()["include"]
    result = subprocess.run(
        [
            os.environ.get("CC", "gcc"),
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            f"-I{include}",
            str(SOURCE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
