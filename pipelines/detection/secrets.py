"""Built-in secret detectors (finding kind ``secret``): credentials with a recognisable shape.

Why these rules: a leaked live credential is urgent whoever it belongs to, and most providers give
their tokens a fixed prefix and length, so a pattern alone has high precision. Where the shape is weak
(a labelled ``password=`` or ``api_key=``, an AWS secret key, a JWT) a check follows the pattern:
Shannon entropy and character classes for labelled values, a decodable JSON header for a JWT.
All patterns are RE2 (linear time) and run over the whole text (blocks of about 1 MB cut on line ends,
with ``never_nl`` and multi-line mode, so a match stays within one line as if each line were read
alone) behind one ``re2.Set``: a block without a secret costs one pass, and no line costs a Python call. Secrets are not attributed to tenants here; the engine does that.

Usage::

    find_secrets(posting_text)  # [SecretHit("github_token", 3, "ghp_..."), ...]
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import re2

from pipelines.detection.lines import Deadline
from pipelines.detection.regexes import (
    MAX_MATCHED_CHARS,
    build_sets,
    encode_text,
    set_matches,
    text_blocks,
    text_options,
    whole_text_pattern,
)

__all__ = ["DETECTORS", "SecretHit", "find_secrets", "shannon_entropy"]


@dataclass(frozen=True)
class SecretHit:
    """A secret found in a posting: which detector, 1-based line, the matched value (unmasked)."""

    detector: str
    line: int
    matched: str


@dataclass(frozen=True)
class _Detector:
    name: str
    pattern: str
    check: Callable[[str], bool] | None = None


def shannon_entropy(value: str) -> float:
    """Bits per character of `value` (0.0 for an empty string)."""
    if not value:
        return 0.0
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


_PLACEHOLDER_WORDS = (
    "example",
    "sample",
    "placeholder",
    "redacted",
    "changeme",
    "your",
    "dummy",
    "xxxx",
    "****",
)
_IDENTIFIER = re2.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _classes(value: str) -> int:
    """How many of lower case, upper case, digits and other characters `value` uses."""
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )


def _plausible_value(value: str) -> bool:
    """Not a template, a placeholder or a code reference such as ``self.password`` or ``os.environ``."""
    lowered = value.lower()
    if value[0] in "$%{@#&*" or any(w in lowered for w in _PLACEHOLDER_WORDS):
        return False
    if len(set(value)) < 6:
        return False
    return _IDENTIFIER.search(value) is None or (_classes(value) >= 3 and any(c.isdigit() for c in value))


def _password_value(value: str) -> bool:
    """A labelled password worth reporting: varied characters and enough entropy."""
    return _plausible_value(value) and _classes(value) >= 3 and shannon_entropy(value) >= 3.0


def _api_key_value(value: str) -> bool:
    """A labelled API key/token worth reporting: long, random-looking, letters and digits."""
    return (
        _plausible_value(value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and shannon_entropy(value) >= 3.5
    )


def _aws_secret_value(value: str) -> bool:
    return shannon_entropy(value) >= 4.0 and _classes(value) >= 3


def _mixed_key(value: str) -> bool:
    """A provider key ID after its prefix: has both letters and digits (drops prose like LTAIXXXX...)."""
    body = value[4:]
    return any(c.isdigit() for c in body) and any(c.isalpha() for c in body)


def _jwt(value: str) -> bool:
    """Header decodes to a JSON object naming an algorithm."""
    header = value.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


_END = r"(?:[^0-9A-Za-z_\-]|$)"  # a token ends at a character tokens never contain
_VALUE = r"""["']?\s*[:=]\s*["']?([^\s"'`<>;,()\[\]{}]{%d,%d})"""

# Each pattern's first capture group, when it has one, is the secret (else the whole match).
DETECTORS: tuple[_Detector, ...] = (
    _Detector("aws_access_key_id", r"\b((?:AKIA|ASIA)[0-9A-Z]{16})" + _END, _mixed_key),
    _Detector(
        "aws_secret_access_key",
        r"(?i)aws_?secret_?(?:access_?)?key"
        + r"""["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)""",
        _aws_secret_value,
    ),
    _Detector("github_token", r"\b(gh[pousr]_[A-Za-z0-9]{36,251})" + _END),
    _Detector("github_pat", r"\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})" + _END),
    _Detector("slack_token", r"\b(xox[baprs]-[0-9]{6,15}-[0-9A-Za-z-]{8,250})" + _END),
    _Detector(
        "slack_webhook",
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/T[0-9A-Z]{6,12}/[0-9A-Za-z]{6,14}/[0-9A-Za-z]{16,40})",
    ),
    _Detector("stripe_key", r"\b((?:sk|rk)_live_[0-9A-Za-z]{24,99})" + _END),
    _Detector("google_api_key", r"\b(AIza[0-9A-Za-z_\-]{35})" + _END),
    _Detector("gitlab_pat", r"\b(glpat-[0-9A-Za-z_\-]{20,64})" + _END),
    # OpenAI keys embed "T3BlbkFJ" (base64 of "OpenAI"); requiring it keeps "sk-" prose and ids out.
    _Detector(
        "openai_api_key",
        r"\b(sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{16,200}T3BlbkFJ[A-Za-z0-9_\-]{16,200})" + _END,
    ),
    _Detector("anthropic_api_key", r"\b(sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,120})" + _END),
    _Detector("alibaba_access_key_id", r"\b(LTAI[0-9A-Za-z]{12,20})" + _END, _mixed_key),
    _Detector("tencent_secret_id", r"\b(AKID[0-9A-Za-z]{32})" + _END, _mixed_key),
    _Detector(
        "private_key",
        r"(-----BEGIN (?:RSA |EC |OPENSSH |DSA |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----)",
    ),
    _Detector("jwt", r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})" + _END, _jwt),
    _Detector(
        "generic_password", r"(?i)(?:\b|_)(?:password|passwd|pwd)" + _VALUE % (8, 128), _password_value
    ),
    _Detector(
        "generic_api_key",
        r"(?i)(?:\b|_)(?:api[_\-]?key|apikey|api[_\-]?secret|secret[_\-]?key|client[_\-]?secret|access[_\-]?token|auth[_\-]?token)"
        + _VALUE % (16, 256),
        _api_key_value,
    ),
)


def _text_pattern(pattern: str) -> str:
    text_pattern = whole_text_pattern(pattern)
    assert text_pattern is not None, pattern  # the detectors need no per-line reading
    return text_pattern


_TEXT_PATTERNS = [_text_pattern(d.pattern) for d in DETECTORS]
_COMPILED = [re2.compile(p.encode("utf-8"), text_options()) for p in _TEXT_PATTERNS]
_SETS = build_sets(_TEXT_PATTERNS, text_options(16 << 20))
_GENERIC = frozenset({"generic_password", "generic_api_key"})


def _block_hits(index: int, line: int, block: bytes) -> Iterator[tuple[int, int, SecretHit]]:
    """(line, offset, hit) for every value detector `index` reports in a block starting at `line`."""
    detector, compiled = DETECTORS[index], _COMPILED[index]
    counted = 0  # newlines counted up to this offset (matches come in order)
    for match in compiled.finditer(block):
        raw = match.group(1) if compiled.groups else match.group(0)
        if not raw:
            continue
        value = raw.decode("utf-8", "replace")
        if detector.check is None or detector.check(value):
            line += block.count(b"\n", counted, match.start())
            counted = match.start()
            yield line, match.start(), SecretHit(detector.name, line, value[:MAX_MATCHED_CHARS])


def find_secrets(text: str, deadline: Deadline | None = None) -> list[SecretHit]:
    """One hit per (detector, value), at the first line the value appears on, in line order.

    A labelled value that a provider detector also recognises (``OPENAI_API_KEY=sk-...``) is reported
    once, by the provider detector, not again as a generic password or key. Past `deadline` the rest
    of the text is not read (the deadline then says ``exceeded``).
    """
    if not text:
        return []
    found: list[tuple[int, int, int, SecretHit]] = []
    seen: set[tuple[str, str]] = set()
    for line, block in text_blocks(encode_text(text), deadline):
        for index in sorted(set_matches(_SETS, block)):
            for number, offset, hit in _block_hits(index, line, block):
                if (hit.detector, hit.matched) not in seen:
                    seen.add((hit.detector, hit.matched))
                    found.append((number, index, offset, hit))
    hits = [hit for *_, hit in sorted(found, key=lambda item: item[:3])]
    specific = {h.matched for h in hits if h.detector not in _GENERIC}
    return [h for h in hits if h.detector not in _GENERIC or h.matched not in specific]
