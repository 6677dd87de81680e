"""The home folder is the service user's alone: 0700 folders, 0600 files.

Why: the home holds the database (alerts, evidence references, sealed secrets), the raw evidence of
leaks, the hashing and secrets keys and the broker's URL with its password. With the usual umask the
database came out 0644 and ``evidence/`` 0755, readable by every local user. Modes are set where things
are created, not fixed afterwards, so there is no window in which another user can open them; homes
made by an older version are tightened the next time any command opens them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from core.settings import Settings

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "secure_home"]

DIR_MODE = 0o700
FILE_MODE = 0o600
#: Files SQLite keeps beside the database; it gives them the database file's mode when it makes them.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    """chmod to ``mode`` if it is ours and looser (a folder we do not own is left alone)."""
    with contextlib.suppress(OSError):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
            return
        if stat.S_IMODE(st.st_mode) & ~mode:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as an owner-only folder."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` exists and is owner-only; an empty file is created 0600 if it is missing."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def secure_home(settings: Settings) -> None:
    """Create the home's folders owner-only, and the SQLite file before SQLite does (0600, not 0644)."""
    private_dir(settings.home)
    for sub in (settings.evidence_dir, settings.index_dir, settings.run_dir):
        private_dir(sub)
    if not settings.database_url:
        db = private_file(settings.sqlite_path)
        for suffix in SQLITE_COMPANIONS:
            companion = db.with_name(db.name + suffix)
            if companion.exists():
                _tighten(companion, FILE_MODE)
    for key in (settings.key_path, settings.home / "secrets.key"):
        if key.exists():
            _tighten(key, FILE_MODE)
