"""Secret detectors: each fires on a fake token of its shape, none fires on a benign corpus.

The tokens below are made up to match the shapes; none is a real credential.
"""

from __future__ import annotations

import base64
import inspect
import json
import random
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.detection import documents, keywords, regexes
from pipelines.detection.secrets import DETECTORS, SecretHit, find_secrets, shannon_entropy


def _b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


FAKE_JWT = (
    _b64url({"alg": "HS256", "typ": "JWT"})
    + "."
    + _b64url({"sub": "user-42", "iat": 1700000000})
    + ".Zm9vYmFyQmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg"
)

POSITIVES = {
    "aws_access_key_id": ("creds AKIAFAKE0TEST1234567 leaked", "AKIAFAKE0TEST1234567"),
    "aws_secret_access_key": (
        'aws_secret_access_key = "fAkE9sEcReT/K7MDENG/bPxRfiCYTESTKEY01234"',
        "fAkE9sEcReT/K7MDENG/bPxRfiCYTESTKEY01234",
    ),
    "github_token": ("GH=ghp_" + "Fak3T0ken" * 4, "ghp_" + "Fak3T0ken" * 4),
    "github_pat": (
        "github_pat_" + "A1b2C3d4E5f6G7h8I9j0K1" + "_" + "Fak3" * 14 + "xyz",
        "github_pat_" + "A1b2C3d4E5f6G7h8I9j0K1" + "_" + "Fak3" * 14 + "xyz",
    ),
    "slack_token": ("slack: xoxb-123456789012-FakeSlackToken42", "xoxb-123456789012-FakeSlackToken42"),
    "slack_webhook": (
        "POST https://hooks.slack.com/services/T0FAKE000/B0FAKE000/Fak3W3bh00kT0k3nABCDEFGH",
        "https://hooks.slack.com/services/T0FAKE000/B0FAKE000/Fak3W3bh00kT0k3nABCDEFGH",
    ),
    "stripe_key": ("STRIPE=sk_live_" + "Fak3Str1peK3y" * 2, "sk_live_" + "Fak3Str1peK3y" * 2),
    "google_api_key": (
        "key=AIza" + "Fak3G00gleK3y_" * 2 + "abcdefg",
        "AIza" + "Fak3G00gleK3y_" * 2 + "abcdefg",
    ),
    "gitlab_pat": ("glpat-Fak3GitLabT0ken12345", "glpat-Fak3GitLabT0ken12345"),
    "openai_api_key": (
        "OPENAI_API_KEY=sk-proj-Fak3Op3nA1abc123T3BlbkFJFak3Op3nA1xyz789",
        "sk-proj-Fak3Op3nA1abc123T3BlbkFJFak3Op3nA1xyz789",
    ),
    "anthropic_api_key": ("sk-ant-api03-" + "Fak3Ant" * 13, "sk-ant-api03-" + "Fak3Ant" * 13),
    "alibaba_access_key_id": ("AccessKeyId: LTAI5tFak3Al1yunKey9", "LTAI5tFak3Al1yunKey9"),
    "tencent_secret_id": (
        "SecretId=AKID" + "Fak3Tenc3nt1" * 2 + "abcdefgh",
        "AKID" + "Fak3Tenc3nt1" * 2 + "abcdefgh",
    ),
    "private_key": ("-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----"),
    "jwt": (f"Authorization: Bearer {FAKE_JWT}", FAKE_JWT),
    "generic_password": ("db_password=Xy7#kq9!Lm2z", "Xy7#kq9!Lm2z"),
    "generic_api_key": ('"api_key": "q8Zr4Kp1Vw7Ny3Tb6Jd0"', "q8Zr4Kp1Vw7Ny3Tb6Jd0"),
}


def test_every_detector_has_a_positive_case() -> None:
    assert {d.name for d in DETECTORS} == set(POSITIVES)


@pytest.mark.parametrize("detector", sorted(POSITIVES))
def test_detector_fires(detector: str) -> None:
    line, value = POSITIVES[detector]
    assert find_secrets(f"header\n{line}\n") == [SecretHit(detector, 2, value)]


def test_private_key_variants() -> None:
    for kind in ["", "RSA ", "EC ", "DSA ", "PGP "]:
        suffix = " BLOCK" if kind == "PGP " else ""
        hits = find_secrets(f"-----BEGIN {kind}PRIVATE KEY{suffix}-----\nMIIE...")
        assert [h.detector for h in hits] == ["private_key"]


def test_one_hit_per_detector_and_value() -> None:
    line, value = POSITIVES["gitlab_pat"]
    other = "glpat-AnotherFak3T0ken4567"
    hits = find_secrets(f"{line}\n{line} {line}\n{other}")
    assert [(h.matched, h.line) for h in hits] == [(value, 1), (other, 3)]


@pytest.mark.parametrize(
    "text",
    [
        "password = getpass.getpass()",
        'password = os.environ["DB_PASSWORD"]',
        "password=self.password_hash",
        "password: changeme123!",
        "password=${DB_PASSWORD}",
        "api_key = 'YOUR_API_KEY_HERE'",
        "api_key=aaaaaaaaaaaaaaaaaaaa",
        "PASSWORD=password",
        "sk-this-is-not-a-key-just-a-slug-of-words",
        "LTAIXXXXXXXXXXXXXXXX",
        "AKIAIOSFODNNEXAMPLEX",  # no digit after the prefix: documentation style
        "eyJnot.eyJajwt.atallbecausetheheaderisjunk",
    ],
)
def test_near_misses_are_not_reported(text: str) -> None:
    assert find_secrets(text) == []


def _benign_corpus() -> str:
    rng = random.Random(11)
    source = "\n".join(inspect.getsource(m) for m in (json, base64, documents, keywords, regexes))
    prose = (
        "The quarterly review covers the migration of the billing service. Passwords must be rotated every "
        "ninety days, and the API key management page explains how to request a new key. "
    ) * 200
    uuids = "\n".join(str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000))
    shas = "\n".join(f"commit {rng.getrandbits(160):040x}" for _ in range(2000))
    image = base64.b64encode(rng.randbytes(300_000)).decode()
    data_uri = f'<img src="data:image/png;base64,{image}">'
    wrapped = "\n".join(image[i : i + 76] for i in range(0, len(image), 76))
    return "\n".join([source, prose, uuids, shas, data_uri, wrapped])


def test_benign_corpus_has_no_findings() -> None:
    assert find_secrets(_benign_corpus()) == []


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == 2.0


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    for hit in find_secrets(text):
        assert hit.line >= 1 and hit.matched


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([v for _, v in POSITIVES.values()] + ["=", ":", " ", "\n", "x"]), max_size=20)
)
def test_never_raises_on_token_soup(parts: list[str]) -> None:
    find_secrets("".join(parts))


def test_huge_single_line_and_binary_junk() -> None:
    started = time.monotonic()
    assert find_secrets("A" * 20_000_000) == []
    find_secrets(random.Random(5).randbytes(5_000_000).decode("latin-1"))
    find_secrets("password=" * 2_000_000)
    assert time.monotonic() - started < 60
