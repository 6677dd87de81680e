"""Evidence in an S3-compatible bucket end to end (issue 14, point 4): ``scan --store`` and a real crawl with
``evidence_url = s3://...`` keep the raw bytes, the HTTP exchange and nothing in the home; ``alerts evidence``
builds the zip from the bucket and ``evidence verify`` accepts it.

The bucket is served by moto's S3 server (``moto[server]``, ThreadedMotoServer on loopback): an emulator of
the S3 API, not AWS S3 or MinIO. boto3 talks to it over real HTTP. Skipped (with the reason) when moto or
boto3 is not installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.db import open_database
from core.models import Posting
from core.settings import load_settings
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.sim.server import LoopbackHandler, LoopbackServer

LEAK = b"combo list\njane@acme.example:hunter2\n\xff\xfe raw bytes kept as fetched\n"


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A fresh bucket, and the settings pointing at it (in the environment: crawl processes inherit them)."""
    import boto3

    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    creds = tmp_path / "aws-credentials"
    creds.write_text("[default]\naws_access_key_id = AKIATEST\naws_secret_access_key = test-secret-value\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="test-secret-value",
    )
    client.create_bucket(Bucket=name)
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_URL", f"s3://{name}/fleet")
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_S3_REGION", "us-east-1")
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_S3_CREDENTIALS_FILE", str(creds))
    client.bucket = name  # type: ignore[attr-defined]
    return client


BOARD = b"""<!doctype html><html><head><meta charset="utf-8"><title>leak board</title></head>
<body><div id="board"><div class="post" id="p1">selling fresh combo alice@acme-bank.example:hunter2</div>
</div></body></html>"""


class LeakBoard(LoopbackServer):
    """A board behind a redirect that answers with a custom header."""

    def handle_get(self, req: LoopbackHandler) -> None:
        if req.path == "/old":
            req.send_body(301, b"", "text/plain", {"Location": "/board"})
        elif req.path == "/board":
            req.send_body(200, BOARD, "text/html; charset=utf-8", {"X-Leak-Board": "sim-7"})
        else:
            req.send_body(404, b"not found", "text/plain")


def _objects(client: Any) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=client.bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=client.bucket, Key=o["Key"])["Body"].read() for o in listed}


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def test_scan_store_keeps_raw_bytes_in_the_bucket_and_the_package_comes_from_it(
    bucket: Any, cli: Any, tmp_path: Path, database_url: str
) -> None:
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", ["acme.example"], [])
    leak = tmp_path / "leak.txt"
    leak.write_bytes(LEAK)
    stored = cli("scan", "--store", str(leak))
    assert stored.code == 0, stored.err
    digest = hashlib.sha256(LEAK).hexdigest()
    assert _objects(bucket) == {f"fleet/{digest[:2]}/{digest}": LEAK}
    assert not settings.evidence_dir.exists() or not any(settings.evidence_dir.rglob("*"))  # nothing in home
    [alert] = list_alerts(db)

    target = tmp_path / "out.zip"
    made = cli("alerts", "evidence", str(alert["id"]), "-o", str(target))
    assert made.code == 0, made.err
    entries = _entries(target.read_bytes())
    [raw_name] = [n for n in entries if n.endswith("/raw.bin")]
    assert entries[raw_name] == LEAK
    checked = cli("evidence", "verify", str(target))
    assert checked.code == 0, checked.err
    assert "OK:" in checked.out

    # The bytes came from the bucket: gone from the bucket, gone from the next package (which says so).
    bucket.delete_object(Bucket=bucket.bucket, Key=f"fleet/{digest[:2]}/{digest}")
    again = tmp_path / "again.zip"
    assert cli("alerts", "evidence", str(alert["id"]), "-o", str(again)).code == 0
    entries = _entries(again.read_bytes())
    assert not [n for n in entries if n.endswith("/raw.bin")]
    fetch = json.loads(entries[raw_name.replace("raw.bin", "fetch.json")])
    assert fetch["raw_note"] == "the raw bytes are no longer in the store"


def test_a_crawl_keeps_the_exchange_in_the_bucket_and_the_zip_verifies(
    bucket: Any, database_url: str
) -> None:
    """A real crawl (its own process, settings from the environment) of a loopback board with a bucket as the
    evidence store: the raw bytes go to the bucket, the exchange with the posting's text (no object of its
    own); the package holds the headers."""
    from core.fetch_record import read_fetch_record
    from crawlers.job import run_crawl
    from leaksentinel.actions.sources import add_source
    from leaksentinel.evidence import MANIFEST, build_evidence, verify_evidence

    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", ["acme-bank.example"], [])
    with LeakBoard() as board:
        base_url = board.base_url
        add_source(db, "board", "generic", f"{base_url}/old", options={"item": "div.post"})
        summary = run_crawl(settings, "board", timeout_s=120)
    assert summary["status"] == "ok" and summary["alerts"] == 1, summary
    (alert,) = list_alerts(db)
    data = build_evidence(db, settings, alert["id"])
    entries = _entries(data)
    posting = json.loads(entries[MANIFEST])["postings"][0]
    objects = _objects(bucket)
    raw_key = f"fleet/{posting['raw_sha256'][:2]}/{posting['raw_sha256']}"
    assert raw_key in objects and f"fleet/fetches/{posting['posting']}.json" not in objects
    assert entries[f"posting-{posting['posting']}/raw.bin"] == objects[raw_key]
    assert posting["status"] == 200 and posting["final_url"] == f"{base_url}/board"
    with db.session() as sess:
        kept = sess.get(Posting, posting["posting"]).text_row.fetch_record
    assert read_fetch_record(settings, posting["posting"], kept) == kept and kept["status"] == 200
    assert not settings.evidence_dir.exists() or not any(settings.evidence_dir.rglob("*"))
    assert verify_evidence(data).ok


def test_purge_deletes_old_evidence_from_the_bucket_and_keeps_what_an_alert_holds(
    bucket: Any, cli: Any, tmp_path: Path, database_url: str
) -> None:
    from leaksentinel.actions.retention import purge

    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", ["acme.example"], [])
    leak, chatter = tmp_path / "leak.txt", tmp_path / "chatter.txt"
    leak.write_bytes(LEAK)
    chatter.write_bytes(b"nothing to see here, only weather talk\n")
    assert cli("scan", "--store", str(leak), str(chatter)).code == 0
    kept, gone = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (leak, chatter))
    assert set(_objects(bucket)) == {f"fleet/{kept[:2]}/{kept}", f"fleet/{gone[:2]}/{gone}"}
    result = purge(db, settings, now=datetime.now(UTC) + timedelta(days=settings.retention_days + 1))
    assert result["evidence_files"] == 1 and result["held_by_alerts"] == 1
    assert set(_objects(bucket)) == {f"fleet/{kept[:2]}/{kept}"}


def test_a_bucket_that_refuses_writes_stores_nothing_and_says_so_in_one_line(
    bucket: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """No posting without its evidence: the store error ends the command (exit 1, one line naming the bucket,
    no credential), and no posting row refers to bytes that were never kept."""
    from sqlalchemy import func, select

    from core.models import Posting

    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", ["acme.example"], [])
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_URL", "s3://no-such-bucket-here/fleet")
    leak = tmp_path / "leak.txt"
    leak.write_bytes(LEAK)
    failed = cli("scan", "--store", str(leak))
    assert failed.code == 1
    [line] = failed.err.strip().splitlines()
    assert "cannot write in s3://no-such-bucket-here/fleet/" in line and "NoSuchBucket" in line
    assert "test-secret-value" not in failed.out + failed.err
    with db.session() as sess:
        assert sess.scalar(select(func.count()).select_from(Posting)) == 0
