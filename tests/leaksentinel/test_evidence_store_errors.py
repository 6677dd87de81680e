"""An evidence store out of reach fails the evidence package (exit 1, one line) instead of producing a signed
zip that claims the raw bytes or the HTTP exchange are gone."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from core.db import open_database
from core.settings import load_settings
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.tenants import add_tenant

LEAK = b"combo list\njane@acme.example:hunter2\n"


def test_an_unreachable_bucket_fails_the_package(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    pytest.importorskip("boto3", reason="boto3 not installed (the s3 extra): S3 store not tested")
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", ["acme.example"], [])
    leak = tmp_path / "leak.txt"
    leak.write_bytes(LEAK)
    assert cli("scan", "--store", str(leak)).code == 0  # kept in the default store (the home's directory)
    [alert] = list_alerts(db)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-printed-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_URL", "s3://evidence-bucket/fleet")
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_S3_ENDPOINT_URL", dead)
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_S3_REGION", "us-east-1")
    target = tmp_path / "out.zip"
    failed = cli("alerts", "evidence", str(alert["id"]), "-o", str(target))
    assert failed.code == 1
    [line] = failed.err.strip().splitlines()
    assert "s3://evidence-bucket/fleet/" in line and "cannot be read" in line, line
    assert "never-printed-secret" not in failed.out + failed.err
    assert not target.exists()
