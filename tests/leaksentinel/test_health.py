"""/healthz and /readyz: ready only with the database, the broker, the schema and the hashing key in order;
alive whatever of those fails. `run` refuses to start with another machine's key."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from core.db import Database
from core.hashing import KEY_BYTES
from core.redis_embedded import EmbeddedRedis
from core.settings import Settings, load_settings
from leaksentinel.api.app import create_app


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with EmbeddedRedis() as server:
        yield server.url


def _client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def _ready(client: TestClient) -> tuple[int, dict[str, Any]]:
    assert client.get("/healthz").status_code == 200  # alive in every case
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/readyz")
    return r.status_code, r.json()


def test_ready_on_a_healthy_embedded_setup(database_url: str, broker: str) -> None:
    code, body = _ready(_client(load_settings(redis_url=broker)))
    assert code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "broker", "hash_key", "evidence"}
    assert body["checks"]["broker"] == {"ok": True, "detail": "reachable"}
    assert all(c["ok"] for c in body["checks"].values())


def test_an_api_only_process_without_broker_is_ready(database_url: str) -> None:
    code, body = _ready(_client(load_settings()))
    assert code == 200, body
    assert body["checks"]["broker"] == {"ok": True, "detail": "not configured"}


def test_not_ready_with_the_database_down(database_url: str, tmp_path: Path, broker: str) -> None:
    client = _client(load_settings(redis_url=broker))
    if database_url:  # PostgreSQL gone: nothing listens on its port any more
        down = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    else:  # the SQLite file's place is now a directory
        (tmp_path / "gone").mkdir()
        down = f"sqlite:///{tmp_path / 'gone'}"
    client.app.state.db = Database(down)  # type: ignore[attr-defined]
    code, body = _ready(client)
    assert code == 503
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["broker"]["ok"] is True
    assert "127.0.0.1" not in str(body)  # no URL (it may carry a password) in an unauthenticated answer


def test_not_ready_when_the_evidence_store_takes_no_write(database_url: str, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    client = _client(load_settings(evidence_path=str(evidence)))
    evidence.rmdir()
    evidence.write_bytes(b"")  # the directory's place is now a file: nothing can be written under it
    code, body = _ready(client)
    assert code == 503
    assert body["checks"]["evidence"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert str(tmp_path) not in str(body)  # the unauthenticated answer names no path


def test_not_ready_with_the_broker_down(database_url: str) -> None:
    code, body = _ready(_client(load_settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")))
    assert code == 503
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_not_ready_with_a_different_hash_key(database_url: str, home: Path) -> None:
    settings = load_settings()
    client = _client(settings)  # the first process records this machine's key
    assert _ready(client)[0] == 200
    settings.key_path.write_text(bytes(range(KEY_BYTES)).hex() + "\n")  # another machine's key
    code, body = _ready(client)
    assert code == 503
    assert body["checks"]["hash_key"]["ok"] is False
    assert "copy hash.key" in body["checks"]["hash_key"]["detail"]
    settings.key_path.unlink()  # a machine with no key at all is not the deployment's either
    code, body = _ready(client)
    assert code == 503 and "no key file" in body["checks"]["hash_key"]["detail"]
    assert not settings.key_path.exists()  # the probe made no key of its own


def test_not_ready_when_the_schema_is_behind(database_url: str) -> None:
    client = _client(load_settings())
    with client.app.state.db.session() as sess:  # type: ignore[attr-defined]
        sess.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    code, body = _ready(client)
    assert code == 503
    assert body["checks"]["migrations"]["ok"] is False
    assert "latest" in body["checks"]["migrations"]["detail"]


def test_run_refuses_to_start_with_another_machines_key(cli: Any, database_url: str, home: Path) -> None:
    settings = load_settings()
    _client(settings)  # the deployment's first machine records its key
    settings.key_path.write_text(bytes(range(KEY_BYTES)).hex() + "\n")
    result = cli("run", "--port", str(_closed_port()))
    assert result.code == 2, (result.out, result.err)
    errors = [line for line in result.err.splitlines() if line.startswith("leaksentinel:")]
    assert len(errors) == 1 and "copy hash.key" in errors[0], result.err
    assert "Traceback" not in result.err
