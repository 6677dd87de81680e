"""`scan --json` on a posting that mixes real-looking tokens and documentation examples: only the
real-looking ones are secret findings, each reported with its rule id as `watch`.

Every token is generated here (seeded) or is a published documentation example.
"""

from __future__ import annotations

import base64
import random
import string
from pathlib import Path
from typing import Any

B62 = string.ascii_letters + string.digits
B64URL = B62 + "_-"
DIGITS = string.digits


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _labelled_key(rng: random.Random) -> str:
    return _r(rng, B62, 31) + rng.choice(DIGITS)


def test_scan_json_reports_real_looking_tokens_by_rule_and_not_documentation_examples(
    cli: Any,
    tmp_path: Path,
) -> None:
    assert cli("tenant", "add", "acme", "--domain", "acme-bank.test").code == 0
    rng = random.Random(13)
    real = {
        "github_token": "ghp_" + _r(rng, B62, 36),
        "gitlab_token": "glrt-" + _r(rng, B64URL, 20),
        "slack_token": f"xoxa-2-{_r(rng, DIGITS, 12)}-{_r(rng, B62, 40)}",
        "stripe_key": "rk_test_" + _r(rng, B62, 24),
        "npm_token": "npm_" + _r(rng, B62, 36),
        "azure_storage_key": base64.b64encode(rng.randbytes(64)).decode(),
        "generic_api_key": _labelled_key(rng),
    }
    lines = [
        "config dump from ops@acme-bank.test",
        "# README: set AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "# aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "# GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        f"GITHUB_TOKEN={real['github_token']}",
        "# gitlab: glpat-xxxxxxxxxxxxxxxxxxxx or gldt-<your-deploy-token-here>",
        f"RUNNER_TOKEN={real['gitlab_token']}",
        f"slack={real['slack_token']}",
        "stripe docs: sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        f"STRIPE={real['stripe_key']}",
        f"//registry.npmjs.org/:_authToken={real['npm_token']}",
        f"AccountName=acme;AccountKey={real['azure_storage_key']};EndpointSuffix=core.windows.net",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA...",
        "-----END RSA PRIVATE KEY-----",
        f'credentials = "{real["generic_api_key"]}"',
        "api_token = YOUR_API_TOKEN_HERE_1",
    ]
    posting = tmp_path / "leak.txt"
    posting.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("scan", "--json", str(posting))
    assert result.code == 0, result.err
    secrets = [f for f in result.jsonl() if f["kind"] == "secret"]
    expected = {
        (rule, next(i for i, line in enumerate(lines, 1) if value in line)) for rule, value in real.items()
    }
    assert {(f["watch"], f["line"]) for f in secrets} == expected
    assert len(secrets) == len(expected)
    for finding in secrets:
        assert finding["tenant"] == "acme" and finding["severity"] == "high"
        assert real[finding["watch"]] not in finding["masked"]
