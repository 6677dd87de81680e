"""`scan --json` reports the cloud credential rules added for issue 13 by their rule id in `watch`: a GCP
service-account key file pasted whole, an Entra ID (Azure AD) client secret; their documentation stand-ins
give nothing. Tokens are generated here (seeded)."""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path
from typing import Any

B62 = string.ascii_letters + string.digits


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_gcp_service_account_and_entra_secret_are_reported_by_rule(cli: Any, tmp_path: Path) -> None:
    assert cli("tenant", "add", "acme", "--domain", "acme-bank.test").code == 0
    rng = random.Random(29)
    key_id = _r(rng, "0123456789abcdef", 40)
    body = base64.b64encode(rng.randbytes(1190)).decode()
    pem = "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n"
    service_account = {
        "type": "service_account",
        "project_id": "acme-bank-prod",
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": "deployer@acme-bank-prod.iam.gserviceaccount.com",
    }
    entra = f"{_r(rng, B62, 3)}8Q~{_r(rng, B62 + '_-', 34)}"
    lines = [
        "ci secrets of ops@acme-bank.test",
        json.dumps(service_account),
        f"AZURE_CLIENT_SECRET={entra}",
        '# docs: "private_key_id": "your-private-key-id", AZURE_CLIENT_SECRET=Abc8Q~' + "x" * 34,
    ]
    posting = tmp_path / "ci.txt"
    posting.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("scan", "--json", str(posting))
    assert result.code == 0, result.err
    secrets = sorted((f["watch"], f["line"]) for f in result.jsonl() if f["kind"] == "secret")
    assert secrets == [("azure_ad_client_secret", 3), ("gcp_service_account", 2), ("private_key", 2)]
    for finding in result.jsonl():
        assert key_id not in finding.get("masked", "") and entra not in finding.get("masked", "")
