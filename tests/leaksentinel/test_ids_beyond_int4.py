"""An id no row can have (beyond PostgreSQL's 32-bit ``integer`` ids) is "not found", on every backend.

Why: SQLite stores 64-bit ids, PostgreSQL's ``integer`` columns stop at 2**31 - 1; the id guards allow 18
digits, so on PostgreSQL such an id reached the database and came back as a DataError: a traceback from
the CLI and a 500 from the API instead of exit 2 and 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

BIG = str(2**31)  # one past PostgreSQL's largest integer


@pytest.mark.parametrize(
    "args",
    [
        ["alerts", "ack", BIG],
        ["alerts", "export", BIG, "--format", "stix"],
        ["unsubscribe", "--tenant", "acme", BIG],
        ["source", "remove", BIG],
        ["watch", "remove", "--tenant", "acme", BIG],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_cli_id_beyond_int4_is_exit_2_without_traceback(cli: Any, database_url: str, args: list[str]) -> None:
    assert cli("tenant", "add", "acme").code == 0
    result = cli(*args)
    assert result.code == 2, (result.code, result.err[-500:])
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1, result.err[-500:]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/postings/{BIG}"),
        ("GET", f"/api/v1/postings/{BIG}/cluster"),
    ],
)
def test_api_id_beyond_int4_is_404(tmp_path: Path, database_url: str, method: str, path: str) -> None:
    from fastapi.testclient import TestClient

    from core.db import open_database
    from core.settings import load_settings
    from leaksentinel.actions.keys import add_key
    from leaksentinel.api.app import create_app

    settings = load_settings()
    key = add_key(open_database(settings), "operator")["api_key"]
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    response = client.request(method, path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404, (response.status_code, response.text[:300])
