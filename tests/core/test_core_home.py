"""The home a CLI command creates is the service user's alone, whatever the umask (issue 11, point 6)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.db import open_database
from core.home import secure_home
from core.settings import load_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual 022 umask would already hide group/other write; 002 (a shared group) shows the bug."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.sqlite_only(
    "file modes of the SQLite file and its WAL; a server database has no file in the home"
)
def test_a_cli_command_creates_an_owner_only_home(
    home: Path, cli: Callable[..., Any], permissive_umask: None
) -> None:
    assert not home.exists()
    assert cli("tenant", "add", "acme").code == 0
    result = cli("subscribe", "--tenant", "acme", "--webhook", "http://127.0.0.1:9/hook", "--secret", "s3")
    assert result.code == 0, result.err
    assert _mode(home) == 0o700
    for folder in ("evidence", "run", "index"):
        assert _mode(home / folder) == 0o700, folder
    db = home / "leaksentinel.db"
    assert _mode(db) == 0o600
    wal = [home / "leaksentinel.db-wal", home / "leaksentinel.db-shm"]
    assert any(p.exists() for p in wal)  # SQLite made them: they inherit the database file's mode
    for companion in wal:
        if companion.exists():
            assert _mode(companion) == 0o600, companion.name
    assert _mode(home / "secrets.key") == 0o600
    # Nothing in the home is readable by group or others.
    loose = [p for p in home.rglob("*") if _mode(p) & 0o077]
    assert not loose, loose


@pytest.mark.sqlite_only("tightens the SQLite file in the home")
def test_a_home_made_by_an_older_version_is_tightened_on_next_open(home: Path) -> None:
    home.mkdir(mode=0o755)
    (home / "evidence").mkdir(mode=0o755)
    os.chmod(home, 0o755)
    os.chmod(home / "evidence", 0o755)
    settings = load_settings()
    db = settings.sqlite_path
    db.touch()
    os.chmod(db, 0o644)
    secure_home(settings)
    assert _mode(home) == 0o700 and _mode(home / "evidence") == 0o700 and _mode(db) == 0o600
    open_database(settings)
    assert _mode(db) == 0o600
