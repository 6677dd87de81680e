"""Built-in secret detectors (finding kind ``secret``): credentials with a recognisable shape.

Why these rules: a leaked live credential is urgent whoever it belongs to, and most providers give
their tokens a fixed prefix and length, so a pattern alone finds them. A pattern alone also finds the
documentation examples and ``ghp_xxxx…`` placeholders that fill READMEs and tutorials, which a security
team learns to ignore, so every rule is followed by a check (:class:`_Check`): the value is not one of
the providers' published example credentials (:data:`KNOWN_EXAMPLES`), its random part is not a
placeholder (``your_…``, ``example``, ``<…>``, ``${…}``, runs of ``x``/``0``/``*``, one repeated
character, ``123456``/``abcdef`` runs) and it reaches the Shannon-entropy floor of its rule family
(calibrated below the lowest of 20,000 random tokens of the family's alphabet and shortest length).
A private-key header is dropped when the block it opens ends within a few kB with a dummy body.
All patterns are RE2 (linear time) and run over the whole text (blocks of about 1 MB cut on line ends,
with ``never_nl`` and multi-line mode, so a match stays within one line as if each line were read
alone) behind one ``re2.Set``: a block without a secret costs one pass, and no line costs a Python call.
Secrets are not attributed to tenants here; the engine does that, reporting the rule id as ``watch``.

Usage::

    find_secrets(posting_text)  # [SecretHit("github_token", 3, "ghp_..."), ...]
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import re2

from pipelines.detection.lines import Deadline
from pipelines.detection.regexes import (
    MAX_MATCHED_CHARS,
    BlockMatch,
    block_matches,
    build_sets,
    encode_text,
    text_options,
    whole_text_pattern,
)

__all__ = ["DETECTORS", "KNOWN_EXAMPLES", "SecretHit", "find_secrets", "is_placeholder", "shannon_entropy"]


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


#: Credentials published in providers' documentation and SDK samples: never a live secret.
KNOWN_EXAMPLES: frozenset[str] = frozenset(
    {
        # AWS (IAM user guide, CLI docs)
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "ASIAIOSFODNN7EXAMPLE",
        # GitHub docs ("Authenticating to the REST API")
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        # Stripe API reference test keys
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "sk_test_26PHem9AhJZvU623DfE1x4sd",
        "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
        # Azurite / Azure Storage Emulator well-known account key (devstoreaccount1)
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        # jwt.io's default token
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
        "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        # Slack API docs
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    }
)

#: Words that mark a value as a stand-in for a credential, not a credential.
_PLACEHOLDER_MARKS = (
    "example",
    "sample",
    "dummy",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "redacted",
    "your_",
    "your-",
    "yourtoken",
    "yourkey",
    "yoursecret",
    "replace_me",
    "replaceme",
    "insert_",
    "notreal",
    "not_real",
    "fake",
    "...",
    "\u2026",
)
_TEMPLATE = re2.compile(r"<[^<>]*>|\$\{|\{\{|%\([A-Za-z_]+\)|\$\(")
_FILLER_RUN = re2.compile(r"[xX]{5}|0{6}|\*{3}|#{4}|_{5}|-{5}|\.{3}|\?{3}")
_RUNS = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zyxwvutsrqponmlkjihgfedcba")
_SEQUENCES = frozenset(run[i : i + 6] for run in _RUNS for i in range(len(run) - 5))


def is_placeholder(value: str) -> bool:
    """`value` (a token or the random part after its prefix) reads as a stand-in, not a secret.

    Why each test: documentation writes ``your_token``, ``<token>``, ``${TOKEN}``, ``xxxx…``, ``0000…``,
    ``****``, ``1234567890abcdef`` or one character repeated; a random token almost never does (the
    chance that a 40-character base62 token holds one of these runs is below one in 10^4).
    """
    if not value:
        return True
    lowered = value.lower()
    if any(mark in lowered for mark in _PLACEHOLDER_MARKS):
        return True
    if _TEMPLATE.search(value) is not None or _FILLER_RUN.search(value) is not None:
        return True
    if any(lowered[i : i + 6] in _SEQUENCES for i in range(len(lowered) - 5)):
        return True
    return len(value) >= 8 and max(Counter(value).values()) * 2 >= len(value)


@functools.cache
def _prefix_pattern(prefix: str) -> Any:
    return re2.compile(prefix)


@dataclass(frozen=True)
class _Check:
    """What a rule's match must also be: not a known example, not a placeholder, random enough.

    `prefix` (an RE2 pattern anchored at the start) is cut off before the placeholder and entropy
    tests, so the floor measures the random part; `extra` is the rule's own shape test."""

    min_entropy: float
    prefix: str = ""
    extra: Callable[[str], bool] | None = None

    def body(self, value: str) -> str:
        if not self.prefix:
            return value
        match = _prefix_pattern(self.prefix).match(value)
        return value[match.end() :] if match else value

    def __call__(self, value: str) -> bool:
        if value in KNOWN_EXAMPLES:
            return False
        body = self.body(value)
        if body in KNOWN_EXAMPLES or is_placeholder(body) or shannon_entropy(body) < self.min_entropy:
            return False
        return self.extra is None or self.extra(value)


_IDENTIFIER = re2.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_GENERIC_WORDS = ("your", "xxxx", "****")


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
    if value[0] in "$%{@#&*" or any(w in lowered for w in _GENERIC_WORDS):
        return False
    if len(set(value)) < 6:
        return False
    return _IDENTIFIER.search(value) is None or (_classes(value) >= 3 and any(c.isdigit() for c in value))


def _password_value(value: str) -> bool:
    """A labelled password worth reporting: varied characters and enough entropy."""
    return _plausible_value(value) and _classes(value) >= 3


_REFERENCE_STARTS = ("/", "./", "~/", "file:", "http:", "https:", "vault:", "arn:", "env:")
_SEGMENT_SPLIT = re2.compile(r"[-_.:/]+")


def _slug_or_reference(value: str) -> bool:
    """A path, URL or words joined by dashes (``file:/etc/app/credentials-2024.json``,
    ``Basic-realm-2-protected-area``): a labelled value that names a secret, not one."""
    if value.lower().startswith(_REFERENCE_STARTS) or "://" in value:
        return True
    segments = [seg for seg in _SEGMENT_SPLIT.split(value) if seg]
    words = sum(seg.isalpha() for seg in segments)
    return len(segments) >= 3 and words * 3 >= len(segments) * 2


_PHRASE_SPLIT = re2.compile(r"[-_.~]+")


def _dotted_phrase(value: str) -> bool:
    """Lower-case words joined by dots or dashes (``your.client.secret.value``): a stand-in, where a
    random token's segments mix cases and digits."""
    segments = [seg for seg in _PHRASE_SPLIT.split(value) if seg]
    words = sum(len(seg) >= 3 and seg.isalpha() and seg.islower() for seg in segments)
    return len(segments) >= 3 and words >= len(segments) - 1


def _api_key_value(value: str) -> bool:
    """A labelled API key/token worth reporting: long, random-looking, letters and digits."""
    return (
        _plausible_value(value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and not _slug_or_reference(value)
    )


def _aws_secret_value(value: str) -> bool:
    return _classes(value) >= 3


def _mixed_key(value: str) -> bool:
    """A provider key ID after its prefix: has both letters and digits (drops prose like LTAIXXXX...)."""
    body = value[4:]
    return any(c.isdigit() for c in body) and any(c.isalpha() for c in body)


def _has_digit(value: str) -> bool:
    """Slack tokens carry numeric ids or random runs with digits; ``xoxa-2-helloworldgreetings`` has none
    past its version digit."""
    return any(c.isdigit() for c in _SLACK_VERSION.sub("", value, count=1))


_SLACK_VERSION = re2.compile(r"^(?:xoxe\.)?x(?:ox[a-z]|app)-(?:[0-9]-)?")


def _jwt(value: str) -> bool:
    """Header decodes to a JSON object naming an algorithm."""
    header = value.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


_DB_WEAK = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "root",
        "admin",
        "postgres",
        "mysql",
        "user",
        "test",
        "guest",
    }
)


def _database_password(value: str) -> bool:
    """The password of ``scheme://user:password@host``: not a stock word, a template or a placeholder."""
    credentials = value.split("://", 1)[-1].rsplit("@", 1)[0]
    password = credentials.split(":", 1)[1] if ":" in credentials else ""
    return (
        len(password) >= 6
        and password.lower() not in _DB_WEAK
        and not is_placeholder(password)
        and shannon_entropy(password) >= 2.3
    )


_END = r"(?:[^0-9A-Za-z_\-]|$)"  # a token ends at a character tokens never contain
_VALUE = r"""["']?\s*[:=]\s*["']?([^\s"'`<>;,()\[\]{}]{%d,%d})"""
_GITLAB_KINDS = "dt|rt|rtr|ptt|oas|ft|imt|agent|cbt|soat|ffct"
_DB_SCHEMES = (
    r"postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|cockroachdb"
)

# Each pattern's first capture group, when it has one, is the secret (else the whole match).
# Entropy floors: the lowest of 20,000 random bodies of the family's alphabet and shortest length, less
# a margin (e.g. 16 chars of [A-Z0-9]: 2.6 lowest; 20 of base62: 3.3; 36 of base62: 4.1).
DETECTORS: tuple[_Detector, ...] = (
    _Detector(
        "aws_access_key_id",
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})" + _END,
        _Check(2.4, "A[A-Z]{3}", _mixed_key),
    ),
    _Detector(
        "aws_secret_access_key",
        r"(?i)aws_?secret_?(?:access_?)?key"
        + r"""["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)""",
        _Check(4.0, "", _aws_secret_value),
    ),
    _Detector("github_token", r"\b(gh[pousr]_[A-Za-z0-9]{36,251})" + _END, _Check(3.6, "gh[pousr]_")),
    _Detector(
        "github_pat",
        r"\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})" + _END,
        _Check(4.3, "github_pat_"),
    ),
    _Detector(
        "slack_token",
        # bot/user/legacy tokens: a numeric team id, id segments, a random tail; workspace (xoxa/xoxr)
        # and refresh (xoxe) tokens: one random run; configuration tokens; app-level tokens
        r"\b((?:xox[abeoprs]-(?:[0-9]-)?[0-9]{6,15}(?:-[0-9A-Za-z]{1,250})*-[0-9A-Za-z]{8,250}"
        r"|xox[aer]-(?:[0-9]-)?[0-9A-Za-z]{16,250}"
        r"|xoxe\.xox[bp]-[0-9]-[0-9A-Za-z]{100,250}"
        r"|xapp-[0-9]-[0-9A-Z]{6,20}-[0-9]{6,20}-[0-9A-Za-z]{32,128}))" + _END,
        _Check(3.0, r"(?:xoxe\.)?x(?:ox[a-z]|app)-(?:[0-9]-)?", _has_digit),
    ),
    _Detector(
        "slack_webhook",
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/T[0-9A-Z]{6,12}/[0-9A-Za-z]{6,14}/[0-9A-Za-z]{16,40})",
        _Check(3.0, r"https://hooks\.slack\.com/[a-z]+/"),
    ),
    _Detector(
        "stripe_key",
        r"\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,247})" + _END,
        _Check(3.3, "[rs]k_(?:live|test)_"),
    ),
    _Detector("google_api_key", r"\b(AIza[0-9A-Za-z_\-]{35})" + _END, _Check(3.6, "AIza")),
    # A GCP service-account key file (JSON, often pasted on one line): its key id, beside the private key
    # block the private_key rule reports, names the leaked key even when the block itself is cut off.
    _Detector(
        "gcp_service_account",
        r'\\?"private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})\\?"',
        _Check(3.0),
    ),
    _Detector("gitlab_pat", r"\b(glpat-[0-9A-Za-z_\-.]{20,100})" + _END, _Check(3.2, "glpat-")),
    _Detector(
        "gitlab_token",
        r"\b((?:gl(?:" + _GITLAB_KINDS + r")-|GR1348941)[0-9A-Za-z_\-.]{20,100})" + _END,
        _Check(3.2, r"(?:gl[a-z]+-|GR1348941)"),
    ),
    # OpenAI keys embed "T3BlbkFJ" (base64 of "OpenAI"); requiring it keeps "sk-" prose and ids out.
    # Project, service-account and admin keys have their own prefix and are long enough without it.
    _Detector(
        "openai_api_key",
        r"\b(sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{16,200}T3BlbkFJ[A-Za-z0-9_\-]{16,200}"
        r"|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,250})" + _END,
        _Check(4.0, "sk-(?:(?:proj|svcacct|admin)-)?"),
    ),
    _Detector(
        "anthropic_api_key",
        r"\b(sk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_\-]{80,120})" + _END,
        _Check(4.5, "sk-ant-[a-z]+[0-9]{2}-"),
    ),
    _Detector("alibaba_access_key_id", r"\b(LTAI[0-9A-Za-z]{12,20})" + _END, _Check(2.2, "LTAI", _mixed_key)),
    _Detector("tencent_secret_id", r"\b(AKID[0-9A-Za-z]{32})" + _END, _Check(3.6, "AKID", _mixed_key)),
    _Detector(
        "private_key",
        r"(-----BEGIN (?:RSA |EC |OPENSSH |DSA |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----)",
        None,  # the header is fixed text: find_secrets judges the block's body (_KeyBlocks)
    ),
    _Detector(
        "jwt",
        r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})" + _END,
        _Check(3.5, "", _jwt),
    ),
    _Detector("npm_token", r"\b(npm_[A-Za-z0-9]{36})" + _END, _Check(3.6, "npm_")),
    _Detector(
        "pypi_token",
        r"\b(pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,1000})" + _END,
        _Check(4.0, "pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)"),
    ),
    _Detector(
        "azure_storage_key",
        r"(?i)\b(?:AccountKey|SharedAccessKey)\s*=\s*([A-Za-z0-9+/]{86}==|[A-Za-z0-9+/]{43}=)(?:[^A-Za-z0-9+/=]|$)",
        _Check(4.0),
    ),
    # Microsoft Entra ID (Azure AD) application client secrets: three characters, a digit, "Q~", then
    # 31-34 random ones; "~" and "." are in the alphabet, so the token's edges are spelled out.
    _Detector(
        "azure_ad_client_secret",
        r"(?:^|[ \t\"'=:(,>])([0-9A-Za-z_~.]{3}[0-9]Q~[0-9A-Za-z_~.\-]{31,34})(?:[^0-9A-Za-z_~.\-]|$)",
        _Check(3.6, r"[0-9A-Za-z_~.]{3}[0-9]Q~", lambda value: not _dotted_phrase(value[6:])),
    ),
    _Detector(
        "database_url",
        r"(?i)\b((?:"
        + _DB_SCHEMES
        + r")(?:\+[a-z0-9]+)?://[^\s:/@\"'`<>]{0,128}:[^\s@/\"'`<>]{1,128}@[A-Za-z0-9_.\-\[\]]+)",
        _Check(2.5, "", _database_password),
    ),
    _Detector(
        "generic_password",
        r"(?i)(?:\b|_)(?:password|passwd|pwd)" + _VALUE % (8, 128),
        _Check(3.0, "", _password_value),
    ),
    _Detector(
        "generic_api_key",
        r"(?i)(?:\b|_)(?:api[_\-]?key|apikey|api[_\-]?secret|api[_\-]?token|secret[_\-]?key|client[_\-]?secret"
        r"|access[_\-]?token|auth[_\-]?token|credentials?|auth)" + _VALUE % (16, 256),
        _Check(3.5, "", _api_key_value),
    ),
)


def _text_pattern(pattern: str) -> str:
    text_pattern = whole_text_pattern(pattern)
    assert text_pattern is not None, pattern  # the detectors need no per-line reading
    return text_pattern


_TEXT_PATTERNS = [_text_pattern(d.pattern) for d in DETECTORS]


@functools.cache
def _compiled(index: int) -> Any:
    """Detector `index`'s whole-text pattern, compiled when a posting first matches it: compiling all of
    them cost every command that loads detection ~12 ms at start, and most postings match none."""
    return re2.compile(_TEXT_PATTERNS[index].encode("utf-8"), text_options())


@functools.cache
def _sets() -> list[tuple[int, Any]]:
    """The detectors' patterns as RE2 Sets, compiled for the first posting read without a shared pass
    (~17 ms): a detector whose tenants watch regexes and domains reads them in the engine's shared Set
    and never compiles these."""
    return build_sets(_TEXT_PATTERNS, text_options(16 << 20))


_GENERIC = frozenset({"generic_password", "generic_api_key"})

#: How far past a private-key header its END line is looked for (a 4096-bit RSA PEM is about 3.3 kB).
_KEY_BODY_WINDOW = 16 << 10
_NOT_BASE64 = re2.compile(r"\\n|\\r|[^A-Za-z0-9+/=]")


class _KeyBlocks:
    """Judges the blocks private-key headers open in one buffer.

    Why: a header alone stays a finding (a truncated paste of a key is still a leak), but a block whose
    body is ``...``, ``<your key>``, ``xxxx`` or a few dozen characters is a documentation stand-in. The
    END line found last is remembered, so a text of many headers is searched once, not once per header.
    """

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self._searched_from = -1  # "-----END " was looked for from here...
        self._found = -1  # ...and found here (-1: not in the rest of the buffer)

    def _close(self, end: int) -> int:
        if self._searched_from < 0 or end < self._searched_from or (0 <= self._found < end):
            self._searched_from = end
            self._found = self.buf.find(b"-----END ", end)
        return self._found

    def dummy(self, end: int) -> bool:
        """The block opened by the header ending at `end` closes within the window with a body no
        real key has."""
        close = self._close(end)
        if close < 0 or close - end > _KEY_BODY_WINDOW:
            return False
        body = self.buf[end:close].decode("utf-8", "replace")
        if is_placeholder(body.replace("\\n", "\n").strip(" \t\r\n\"'")):
            return True
        encoded = _NOT_BASE64.sub("", body)
        return len(encoded) < 120 or shannon_entropy(encoded) < 4.5


def _block_hits(index: int, line: int, block: bytes) -> Iterator[tuple[int, int, SecretHit]]:
    """(line, offset, hit) for every value detector `index` reports in a block starting at `line`."""
    detector, compiled = DETECTORS[index], _compiled(index)
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


_PRIVATE_KEY = next(i for i, d in enumerate(DETECTORS) if d.name == "private_key")


#: The detectors' whole-text patterns, in DETECTORS' order (a shared `block_matches` pass numbers them so).
TEXT_PATTERNS = tuple(_TEXT_PATTERNS)


def find_secrets(
    text: str,
    deadline: Deadline | None = None,
    *,
    encoded: bytes | None = None,
    matched: list[BlockMatch] | None = None,
) -> list[SecretHit]:
    """One hit per (detector, value), at the first line the value appears on, in line order.

    A labelled value that a provider detector also recognises (``OPENAI_API_KEY=sk-...``) is reported
    once, by the provider detector, not again as a generic password or key. A private-key header whose
    block has a dummy body is not reported. Past `deadline` the rest of the text is not read (the
    deadline then says ``exceeded``). ``encoded``: ``encode_text(text)`` when the caller has it already;
    ``matched``: the blocks of it where `TEXT_PATTERNS` match, when a shared pass found them already.
    """
    if not text:
        return []
    found: list[tuple[int, int, int, SecretHit]] = []
    seen: set[tuple[str, str]] = set()
    buf = encode_text(text) if encoded is None else encoded
    keys = _KeyBlocks(buf)
    blocks = block_matches(buf, deadline, _sets()) if matched is None else matched
    for line, base, block, indexes in blocks:  # base: the block's offset in buf
        for index in sorted(indexes):
            for number, offset, hit in _block_hits(index, line, block):
                if (hit.detector, hit.matched) in seen:
                    continue
                if index == _PRIVATE_KEY and keys.dummy(base + offset + len(hit.matched)):
                    continue
                seen.add((hit.detector, hit.matched))
                found.append((number, index, offset, hit))
    hits = [hit for *_, hit in sorted(found, key=lambda item: item[:3])]
    specific = {h.matched for h in hits if h.detector not in _GENERIC}
    return [h for h in hits if h.detector not in _GENERIC or h.matched not in specific]
