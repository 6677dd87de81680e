"""The evidence store (core.evidence_store): one test suite run over the directory store and the S3 store.

The S3 store is tested against moto's S3 server (``moto[server]``'s ThreadedMotoServer, a real HTTP server on
loopback that boto3 talks to over the network), not against AWS S3 or MinIO: moto is an emulator of the S3
API, so what it proves is that the store speaks S3 through boto3 correctly, not that a given vendor's server
behaves the same way. The S3 variants are skipped (with the reason) when moto or boto3 is not installed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadInput
from core.evidence_store import (
    EvidenceStore,
    EvidenceStoreError,
    FileEvidenceStore,
    S3EvidenceStore,
    blob_key,
    open_evidence_store,
    parse_s3_url,
    put_blob,
    put_blobs,
)
from core.settings import load_settings

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "leaksentinel-test",
    "AWS_SECRET_ACCESS_KEY": "leaksentinel-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the standard AWS variables, and nothing from the developer's ~/.aws."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"evidence-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EvidenceStore:
    if request.param == "file":
        return FileEvidenceStore(tmp_path / "shared" / "evidence")
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("aws_env")
    bucket = new_bucket(endpoint)
    settings = load_settings(evidence_url=f"s3://{bucket}/fleet/evidence", evidence_s3_endpoint_url=endpoint)
    made = open_evidence_store(settings)
    assert isinstance(made, S3EvidenceStore) and made.prefix == "fleet/evidence/"
    return made


def test_put_get_exists_delete_round_trip(store: EvidenceStore) -> None:
    data = b"\x00\xff raw bytes as fetched \r\n" * 100
    digest = put_blob(store, data)
    assert digest == hashlib.sha256(data).hexdigest()
    key = blob_key(digest)
    assert key == f"{digest[:2]}/{digest}"
    assert store.exists(key) and store.get(key) == data
    assert store.get(key, limit=4) == data[:4]
    assert store.get(key, limit=len(data) + 10) == data
    store.put("fetches/7.json", b'{"status": 200}')
    assert store.get("fetches/7.json") == b'{"status": 200}'
    store.put("fetches/7.json", b'{"status": 404}')  # a sidecar written again replaces the old one
    assert store.get("fetches/7.json") == b'{"status": 404}'
    store.delete(key)
    assert not store.exists(key) and store.get(key) is None
    store.delete(key)  # deleting what is gone is not an error
    assert store.get("fetches/8.json") is None and not store.exists("fetches/8.json")


def test_put_blob_writes_content_once_and_keys_lists_everything(store: EvidenceStore) -> None:
    blobs = [f"posting {i}".encode() for i in range(5)]
    digests = [put_blob(store, b) for b in blobs]
    assert put_blob(store, blobs[0]) == digests[0]
    store.put("fetches/1.json", b"{}")
    store.put("fetches/2.json", b"{}")
    everything = sorted(store.keys())
    assert everything == sorted([blob_key(d) for d in digests] + ["fetches/1.json", "fetches/2.json"])
    assert sorted(store.keys("fetches")) == ["fetches/1.json", "fetches/2.json"]
    assert sorted(store.keys("fetches/")) == ["fetches/1.json", "fetches/2.json"]
    under = set(store.keys(digests[0][:2]))
    assert blob_key(digests[0]) in under and all(k.startswith(digests[0][:2] + "/") for k in under)
    assert list(store.keys("nothing-here")) == []


def test_put_blobs_keeps_every_blob_once_and_answers_their_digests(store: EvidenceStore) -> None:
    blobs = [b"first posting", b"second posting", b"first posting", b""]
    digests = put_blobs(store, blobs)
    assert digests == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert all(store.get(blob_key(d)) == b for d, b in zip(digests, blobs, strict=True))
    assert sorted(store.keys()) == sorted({blob_key(d) for d in digests})
    assert put_blobs(store, blobs[:2]) == digests[:2] and put_blobs(store, []) == []


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "<absolute>", "", ".hidden", "a//b", "a/./b", "a\\b", "x y", "a/.tmp"]
)
def test_keys_cannot_leave_the_store(store: EvidenceStore, key: str, tmp_path: Path) -> None:
    # An absolute key names a file of this test's own, never a system file: were the check broken, a
    # put would overwrite it (an earlier version of this test named /etc/passwd and did just that).
    victim = tmp_path / "outside-the-store" / "victim"
    if key == "<absolute>":
        key = str(victim)
    for call in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError, match="not an evidence key"):
            call()
    assert not victim.exists()


def test_a_reader_never_sees_half_a_write(store: EvidenceStore) -> None:
    """Writers replacing one key with whole objects of different sizes; every read is one of them whole."""
    versions = [bytes([i]) * (50_000 + 7919 * i) for i in range(4)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            while not stop.is_set():
                store.put("fetches/race.json", versions[i])
        except BaseException as exc:
            errors.append(exc)

    store.put("fetches/race.json", versions[0])
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(versions))]
    for t in threads:
        t.start()
    try:
        for _ in range(60):
            assert store.get("fetches/race.json") in versions
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert sorted(store.keys()) == ["fetches/race.json"]  # no temporary file is ever listed or left


def test_check_passes_on_a_working_store(store: EvidenceStore) -> None:
    store.check()
    assert "evidence" in store.describe()


def test_the_directory_layout_is_the_one_evidence_always_had(tmp_path: Path) -> None:
    """Existing homes keep working: raw bytes at ``evidence/ab/abcdef...``, sidecars at ``fetches/ID.json``."""
    store = FileEvidenceStore(tmp_path / "evidence")
    digest = put_blob(store, b"leak")
    assert (tmp_path / "evidence" / digest[:2] / digest).read_bytes() == b"leak"
    store.put("fetches/12.json", b"{}")
    assert (tmp_path / "evidence" / "fetches" / "12.json").read_bytes() == b"{}"
    (tmp_path / "evidence" / "ab").mkdir()
    (tmp_path / "evidence" / "ab" / ".abcd.123.tmp").write_bytes(b"half")  # a write cut short
    assert sorted(store.keys()) == [f"{digest[:2]}/{digest}", "fetches/12.json"]
    default = open_evidence_store(load_settings())
    assert isinstance(default, FileEvidenceStore) and default.root == load_settings().evidence_dir


def test_an_unwritable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    store = FileEvidenceStore(blocker / "evidence")
    with pytest.raises(EvidenceStoreError, match="cannot write"):
        store.put("fetches/1.json", b"{}")
    with pytest.raises(EvidenceStoreError, match="not writable"):
        store.check()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"evidence_url": "http://bucket/x"}, "expected s3://BUCKET"),
        ({"evidence_url": "s3://AKIA:secret@bucket/x"}, "credentials do not belong in the URL"),
        ({"evidence_url": "s3://Bad_Bucket/x"}, "not a valid bucket name"),
        ({"evidence_url": "s3://bucket/../x"}, "prefix"),
        ({"evidence_url": "s3://bucket/x?y=1"}, "no query"),
        ({"evidence_url": "s3://bucket", "evidence_path": "/srv/evidence"}, "both set"),
        ({"evidence_url": "s3://bucket", "evidence_s3_endpoint_url": "minio:9000"}, "http(s)://HOST"),
        (
            {"evidence_url": "s3://bucket", "evidence_s3_credentials_file": "/nonexistent/creds"},
            "no such file",
        ),
        ({"evidence_s3_endpoint_url": "http://127.0.0.1:9000"}, "evidence_url is empty"),
    ],
)
def test_a_bad_store_configuration_is_an_error_when_settings_load(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(BadInput, match="evidence") as caught:
        load_settings(**settings)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_bad_evidence_url_from_the_environment_stops_the_cli(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start, before any work: exit 2 and one line, not a crash in the middle of a crawl."""
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_URL", "s3:/bucket-without-slashes")
    result = cli("alerts", "list")
    assert result.code == 2
    assert "evidence_url" in result.err and "Traceback" not in result.err


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/") == ("bucket", "")
    assert parse_s3_url("s3://my.bucket-1/a/b/") == ("my.bucket-1", "a/b/")


def test_credentials_come_from_the_configured_file(
    moto_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No key in the environment: the store reads ``evidence_s3_credentials_file``; without it, a clear
    store error (never a credential in the message)."""
    bucket = new_bucket(moto_endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    without = S3EvidenceStore(bucket, endpoint_url=moto_endpoint, region="us-east-1")
    with pytest.raises(EvidenceStoreError, match="credentials") as caught:
        without.put("fetches/1.json", b"{}")
    assert bucket in str(caught.value)
    creds = tmp_path / "aws-credentials"
    creds.write_text(
        "[default]\naws_access_key_id = AKIAFROMFILE\naws_secret_access_key = s3cr3t-from-file\n"
    )
    settings = load_settings(
        evidence_url=f"s3://{bucket}",
        evidence_s3_endpoint_url=moto_endpoint,
        evidence_s3_region="us-east-1",
        evidence_s3_credentials_file=str(creds),
    )
    store = open_evidence_store(settings)
    store.put("fetches/1.json", b"{}")
    assert store.get("fetches/1.json") == b"{}"
    assert "s3cr3t" not in repr(store) and "s3cr3t" not in store.describe()


def test_an_unreachable_or_missing_bucket_is_a_store_error(moto_endpoint: str, aws_env: None) -> None:
    missing = S3EvidenceStore(f"no-such-{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint)
    with pytest.raises(EvidenceStoreError, match="cannot reach the bucket"):
        missing.check()
    with pytest.raises(EvidenceStoreError, match="cannot write"):
        missing.put("fetches/1.json", b"{}")
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = S3EvidenceStore("bucket", endpoint_url=dead)
    with pytest.raises(EvidenceStoreError, match="cannot read"):
        down.get("fetches/1.json")


def test_evidence_store_command_says_whether_the_store_answers(
    cli: Any, moto_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ok = cli("evidence", "store", "--json")
    assert ok.code == 0, ok.err
    assert ok.json() == {
        "store": f"directory {load_settings().evidence_dir}",
        "kind": "directory",
        "ok": True,
        "problem": None,
    }
    bucket = new_bucket(moto_endpoint)
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_URL", f"s3://{bucket}/evidence")
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_S3_ENDPOINT_URL", moto_endpoint)
    s3 = cli("evidence", "store")
    assert s3.code == 0, s3.err
    assert s3.out.strip() == f"evidence store s3://{bucket}/evidence/ at {moto_endpoint}: OK"
    monkeypatch.setenv("LEAKSENTINEL_EVIDENCE_URL", "s3://no-such-bucket-here/evidence")
    missing = cli("evidence", "store", "--json")
    assert missing.code == 1
    assert missing.json()["problem"] == (
        f"cannot reach the bucket s3://no-such-bucket-here/evidence/ at {moto_endpoint}: no such bucket"
    )
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in missing.out + missing.err


def test_evidence_is_flushed_to_disk_and_fetch_sidecars_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The raw bytes a posting row will reference are on disk before the row is written; the fetch sidecar
    (headers, status) is written atomically but without a second disk flush per posting."""
    from core.fetch_record import read_fetch_record, write_fetch_record

    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushed.append(fd), real_fsync(fd))[1])
    store = FileEvidenceStore(tmp_path / "evidence")
    put_blob(store, b"the raw bytes of a posting")
    assert len(flushed) == 1
    record = {"status": 200, "url": "https://paste.example/x", "request_headers": [["Accept", "*/*"]]}
    write_fetch_record(store, 7, record)
    assert len(flushed) == 1, "the sidecar was flushed on its own"
    assert (read_fetch_record(store, 7) or {}).get("status") == 200
    store.put("fetches/8.json", b"{}", durable=False)
    assert store.get("fetches/8.json") == b"{}" and len(flushed) == 1


def test_a_batch_of_evidence_is_flushed_to_disk_once_before_put_blobs_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crawl's batch pays one flush of the file system (syncfs), not one fsync per posting; without
    syncfs each file is flushed; a file cut short (a crash before its flush) is written again."""
    import core.evidence_store as evidence_store

    calls: list[str] = []
    real_fsync, real_syncfs = os.fsync, evidence_store._SYNCFS
    assert real_syncfs is not None  # Linux (glibc): what CI runs on
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(evidence_store, "_SYNCFS", lambda fd: (calls.append("syncfs"), real_syncfs(fd))[1])
    store = FileEvidenceStore(tmp_path / "evidence")
    blobs = [f"posting {i}".encode() * 50 for i in range(6)]
    digests = put_blobs(store, blobs)
    assert calls == ["syncfs"]
    cut = store._path(blob_key(digests[0]))
    cut.write_bytes(blobs[0][:10])
    put_blobs(store, blobs[:2])
    assert cut.read_bytes() == blobs[0] and calls == ["syncfs", "syncfs"]

    calls.clear()
    monkeypatch.setattr(evidence_store, "_SYNCFS", None)
    put_blobs(store, [b"a", b"b", b"c"])
    assert calls == ["fsync"] * 3
    assert [store.get(blob_key(hashlib.sha256(b).hexdigest())) for b in (b"a", b"b", b"c")] == [
        b"a",
        b"b",
        b"c",
    ]
