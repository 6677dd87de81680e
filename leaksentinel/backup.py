"""``backup FILE`` / ``restore FILE``: a consistent copy of an embedded home, taken while ``run`` is up.

Why each part is copied the way it is:

- The database goes through SQLite's online backup API: one read transaction copies every page, so the
  copy is one committed state even while crawls write (WAL readers never block writers, nor the reverse).
- The indexes are copied *before* the database snapshot (the tantivy index under its writer lock, so no
  commit or merge runs while its files are read). They can therefore only lag the database, never hold a
  posting it lacks; ``restore`` compares them with the restored database and rebuilds what does not agree
  with the existing rebuild code (``core.search.reindex``, ``CandidateIndex.rebuild``, ``MatchIndex.sync``).
- Evidence files are content-addressed and written before the posting that names them is committed, so
  copying them *after* the snapshot covers every file the snapshot refers to.
- ``run/`` (pids, sockets, the embedded broker) is never copied: it describes processes, not data.

The archive is a tar.gz whose first member is ``manifest.json`` (format version, created_at, and every
file's size and SHA-256). ``restore`` reads the whole archive and checks every name, type, size and hash
before it writes anything, and only into a home that holds no data yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import quote

from core.errors import BadInput, OperationalError
from core.home import DIR_MODE, FILE_MODE, private_dir
from core.settings import Settings

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "backup_home",
    "read_manifest",
    "restore_home",
]

FORMAT = "leaksentinel-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_NAME = "leaksentinel.db"
#: Single files of the home that are copied when present (keys, and the home's own configuration).
HOME_FILES = ("hash.key", "secrets.key", "evidence.key", "console.secret", "config.toml")
#: Folders of the home that are copied (``run/`` never is).
HOME_DIRS = ("evidence", "index", "search")
#: Files inside the copied folders that belong to a running process, not to the data.
SKIPPED_NAMES = frozenset({"writer.lock", ".tantivy-writer.lock", ".tantivy-meta.lock"})
#: A restore refuses members above this size and archives with more members than this (a hostile
#: archive must not fill the disk or the memory before its hashes are checked).
MAX_MEMBER_BYTES = 1 << 40
MAX_MEMBERS = 10_000_000
MAX_MANIFEST_BYTES = 1 << 30
CHUNK = 1 << 20

PG_MESSAGE = (
    "backup covers the embedded default (SQLite in the home); with a server database use pg_dump "
    "and copy hash.key, secrets.key, evidence.key and evidence/ (docs/operators.md, Backups)"
)


@dataclass(frozen=True)
class Entry:
    """One file of the backup: its name in the archive (relative to the home) and where to read it."""

    name: str
    source: Path
    size: int
    sha256: str


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _regular_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root``, symbolic links never followed (a link in the home is not data)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name in SKIPPED_NAMES or (name.startswith(".") and name.endswith(".tmp")):
                continue
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                if stat.S_ISREG(path.lstat().st_mode):
                    yield path


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy the regular files of ``src``; a file removed meanwhile (a merged segment) is skipped."""
    for path in _regular_files(src):
        target = dst / path.relative_to(src)
        private_dir(target.parent)
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(path, target, follow_symlinks=False)
            os.chmod(target, FILE_MODE)


@contextlib.contextmanager
def _search_writer_lock(search_dir: Path) -> Iterator[None]:
    """Hold the tantivy index's writer lock (the one ``TantivyBackend`` takes) so nothing commits meanwhile."""
    fd = os.open(search_dir / "writer.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _snapshot_database(source: Path, target: Path) -> None:
    """One consistent copy through SQLite's online backup API, checked before it is archived."""
    try:
        src = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=60)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
                row = dst.execute("PRAGMA quick_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise OperationalError(f"cannot copy the database {source}: {exc}") from None
    if not row or row[0] != "ok":
        raise OperationalError(f"the copy of the database failed its integrity check: {row}")
    os.chmod(target, FILE_MODE)


def _check_destination(settings: Settings, dest: Path, force: bool) -> Path:
    dest = dest.expanduser().absolute()
    home = settings.home.expanduser().absolute()
    if dest == home or home in dest.parents:
        raise BadInput(f"backup file {dest} is inside the home {home}: write it elsewhere")
    if dest.is_dir():
        raise BadInput(f"backup file {dest} is a directory")
    if dest.exists() and not force:
        raise BadInput(f"backup file {dest} exists (use --force to replace it)")
    if not dest.parent.is_dir():
        raise BadInput(f"no such directory: {dest.parent}")
    return dest


def backup_home(settings: Settings, dest: Path, *, force: bool = False) -> dict[str, Any]:
    """Write a backup of the embedded home to ``dest`` (0600); returns what ``backup`` prints."""
    if settings.database_url:
        raise BadInput(PG_MESSAGE)
    home = settings.home
    if not settings.sqlite_path.is_file() or settings.sqlite_path.stat().st_size == 0:
        raise BadInput(f"nothing to back up: {home} has no database")
    dest = _check_destination(settings, dest, force)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix=".leaksentinel-backup-", dir=dest.parent) as tmp:
        staging = Path(tmp)
        os.chmod(staging, DIR_MODE)
        # 1. indexes first: they may lag the database snapshot, never lead it
        search_dir = home / "search"
        if search_dir.is_dir() and not settings.search_url:
            with _search_writer_lock(search_dir):
                _copy_tree(search_dir, staging / "search")
        if (home / "index").is_dir():
            _copy_tree(home / "index", staging / "index")
        # 2. the database, one committed state
        _snapshot_database(settings.sqlite_path, staging / DB_NAME)
        entries: list[Entry] = []

        def add(name: str, source: Path) -> None:
            digest, size = _sha256_file(source)
            entries.append(Entry(name, source, size, digest))

        add(DB_NAME, staging / DB_NAME)
        for name in HOME_FILES:
            path = home / name
            if path.is_file() and not path.is_symlink():
                add(name, path)
        # 3. evidence after the snapshot: every file the snapshot names exists by now
        for path in _regular_files(home / "evidence"):
            with contextlib.suppress(FileNotFoundError):
                add(path.relative_to(home).as_posix(), path)
        for sub in ("search", "index"):
            for path in _regular_files(staging / sub):
                add(path.relative_to(staging).as_posix(), path)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": created_at,
            "home": str(home),
            "files": [{"path": e.name, "size": e.size, "sha256": e.sha256} for e in entries],
        }
        _write_archive(dest, manifest, entries)
    archive_sha, archive_bytes = _sha256_file(dest)
    return {
        "backup": str(dest),
        "created_at": created_at,
        "files": len(entries),
        "bytes": sum(e.size for e in entries),
        "archive_bytes": archive_bytes,
        "sha256": archive_sha,
    }


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = FILE_MODE
    info.mtime = int(time.time())
    info.type = tarfile.REGTYPE
    return info


def _write_archive(dest: Path, manifest: dict[str, Any], entries: list[Entry]) -> None:
    """Write beside ``dest`` (0600 from creation) and rename: a reader never sees half an archive."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar,
        ):
            body = json.dumps(manifest, indent=1).encode()
            tar.addfile(_tarinfo(MANIFEST, len(body)), io.BytesIO(body))
            for entry in entries:
                with entry.source.open("rb") as fh:
                    tar.addfile(_tarinfo(entry.name, entry.size), _Exact(fh, entry))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class _Exact(io.RawIOBase):
    """A file that must still be what was hashed: a file that changed after hashing fails the backup."""

    def __init__(self, fh: IO[bytes], entry: Entry) -> None:
        self.fh = fh
        self.entry = entry
        self.digest = hashlib.sha256()
        self.seen = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        self.seen += len(data)
        if self.seen == self.entry.size and self.digest.hexdigest() != self.entry.sha256:
            raise OperationalError(
                f"{self.entry.name} changed while it was being backed up; run backup again"
            )
        if not data and self.seen < self.entry.size:
            raise OperationalError(f"{self.entry.name} shrank while it was being backed up; run backup again")
        return data


# --------------------------------------------------------------------------- restore


def _valid_name(name: str) -> bool:
    """A plain relative path into one of the parts a backup holds: no ``..``, no absolute path."""
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        return False
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") for p in parts) or "/".join(parts) != name:
        return False
    if len(parts) == 1:
        return name == DB_NAME or name in HOME_FILES
    return parts[0] in HOME_DIRS


def _open_archive(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:gz")
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadInput(f"{path} is not a leaksentinel backup ({exc})") from None


def _parse_manifest(data: bytes, path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        if manifest.get("format") != FORMAT:
            raise ValueError("not a leaksentinel backup manifest")
        if manifest.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"format version {manifest.get('version')!r}, this version reads {FORMAT_VERSION}"
            )
        files = manifest["files"]
        if not isinstance(files, list) or len(files) > MAX_MEMBERS:
            raise ValueError("bad file list")
        seen: set[str] = set()
        for item in files:
            name, size, sha = item["path"], item["size"], item["sha256"]
            if not isinstance(name, str) or not _valid_name(name):
                raise ValueError(f"refused path {name!r}")
            if name in seen:
                raise ValueError(f"{name!r} listed twice")
            seen.add(name)
            if not isinstance(size, int) or size < 0 or size > MAX_MEMBER_BYTES:
                raise ValueError(f"{name}: refused size {size!r}")
            if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise ValueError(f"{name}: bad sha256")
        if DB_NAME not in seen:
            raise ValueError("no database in the backup")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise BadInput(f"{path}: bad manifest: {type(exc).__name__}: {exc}"[:500]) from None
    return manifest


def _members(tar: tarfile.TarFile, path: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """The archive's members in order, each refused unless it is a regular file with a safe name."""
    count = 0
    try:
        for info in tar:
            count += 1
            if count > MAX_MEMBERS + 1:
                raise BadInput(f"{path}: too many members")
            if not info.isreg() or info.issparse():
                kind = "link" if info.issym() or info.islnk() else "non-file"
                raise BadInput(f"{path}: refused {kind} member {info.name!r}")
            if info.name != MANIFEST and not _valid_name(info.name):
                raise BadInput(f"{path}: refused member path {info.name!r}")
            if info.size > (MAX_MANIFEST_BYTES if info.name == MANIFEST else MAX_MEMBER_BYTES):
                raise BadInput(f"{path}: refused member {info.name!r} of {info.size} bytes")
            yield info, tar.extractfile(info)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadInput(f"{path} is damaged ({exc})") from None


def _walk_archive(path: Path, write_to: Path | None, space_at: Path | None = None) -> dict[str, Any]:
    """Check every member against the manifest; with ``write_to``, also write each file there (0600).
    With ``space_at``, refuse a backup larger than the free space there before reading any member."""
    with _open_archive(path) as tar:
        members = _members(tar, path)
        first = next(members, None)
        if first is None or first[0].name != MANIFEST or first[1] is None:
            raise BadInput(f"{path} is not a leaksentinel backup (no {MANIFEST} first)")
        if first[0].size > MAX_MANIFEST_BYTES:
            raise BadInput(f"{path}: refused manifest of {first[0].size} bytes")
        try:
            manifest = _parse_manifest(first[1].read(), path)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise BadInput(f"{path} is damaged ({exc})") from None
        expected = {f["path"]: f for f in manifest["files"]}
        if space_at is not None:
            _check_space(path, space_at, sum(f["size"] for f in expected.values()))
        done: set[str] = set()
        for info, fh in members:
            want = expected.get(info.name)
            if want is None or info.name in done:
                raise BadInput(f"{path}: member {info.name!r} is not in the manifest (or repeated)")
            if info.size != want["size"]:
                raise BadInput(f"{path}: {info.name} is {info.size} bytes, the manifest says {want['size']}")
            assert fh is not None
            _copy_member(fh, info, want, path, write_to)
            done.add(info.name)
        missing = sorted(set(expected) - done)
        if missing:
            raise BadInput(f"{path}: {len(missing)} files of the manifest are missing (first: {missing[0]})")
    return manifest


def _copy_member(
    fh: IO[bytes], info: tarfile.TarInfo, want: dict[str, Any], path: Path, write_to: Path | None
) -> None:
    digest = hashlib.sha256()
    out: IO[bytes] | None = None
    if write_to is not None:
        target = write_to / info.name
        private_dir(target.parent)
        out = os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb")
    try:
        left = info.size
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise BadInput(f"{path}: {info.name} is cut short")
            digest.update(chunk)
            left -= len(chunk)
            if out is not None:
                out.write(chunk)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadInput(f"{path} is damaged ({exc})") from None
    finally:
        if out is not None:
            out.close()
    if digest.hexdigest() != want["sha256"]:
        raise BadInput(
            f"{path}: {info.name} does not match its SHA-256 in the manifest (tampered or damaged)"
        )


def _check_space(path: Path, where: Path, total: int) -> None:
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if total > free:
        raise BadInput(f"{path}: the backup holds {total} bytes, more than the {free} bytes free")


def read_manifest(path: Path, space_at: Path | None = None) -> dict[str, Any]:
    """The manifest of a backup, once every file has been checked against it (nothing written)."""
    return _walk_archive(path, None, space_at)


def _home_holds_data(home: Path) -> str | None:
    """What makes ``home`` not empty: a database or any other file (``run/`` and empty folders aside)."""
    if not home.exists():
        return None
    if not home.is_dir():
        return f"{home} is not a directory"
    db = home / DB_NAME
    if db.is_symlink() or (db.exists() and (not db.is_file() or db.stat().st_size > 0)):
        return f"{home} already has a database"
    for dirpath, dirnames, filenames in os.walk(home):
        if Path(dirpath) == home:
            dirnames[:] = [d for d in dirnames if d != "run"]
        for name in filenames:
            p = Path(dirpath) / name
            if (
                p.parent == home
                and name.startswith(DB_NAME)
                and stat.S_ISREG(p.lstat().st_mode)
                and p.lstat().st_size == 0
            ):
                continue  # the empty database file any command creates before SQLite does
            return f"{home} is not empty (it holds {p.relative_to(home)})"
    return None


def restore_home(settings: Settings, source: Path) -> dict[str, Any]:
    """Restore a backup into an empty or new home; every hash is checked before anything is written."""
    if settings.database_url:
        raise BadInput(
            "restore covers the embedded default; with a server database restore its pg_dump with pg_restore "
            "and copy the keys and evidence (docs/operators.md, Backups)"
        )
    home = settings.home.expanduser().absolute()
    source = source.expanduser().absolute()
    problem = _home_holds_data(home)
    if problem:
        raise BadInput(f"{problem}: restore only into an empty or new home (set LEAKSENTINEL_HOME)")
    if not source.is_file():
        raise BadInput(f"no such file: {source}")
    manifest = read_manifest(source, home.parent)  # pass 1: everything checked, nothing written
    home.parent.mkdir(parents=True, exist_ok=True)  # never chmod a parent we did not make (it may be /srv)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.restore-", dir=home.parent))
    try:
        _walk_archive(source, staging)  # pass 2: written aside, checked again as it is written
        problem = _home_holds_data(home)
        if problem:  # someone started using the home meanwhile
            raise BadInput(f"{problem}: restore only into an empty or new home")
        private_dir(home)
        for child in sorted(staging.iterdir()):
            target = home / child.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # only empty folders (checked above): evidence/, index/
            elif target.exists():
                target.unlink()  # the empty database file
            os.replace(child, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        rebuilt = _repair_indexes(settings)
    except Exception as exc:  # e.g. a backup from a newer version whose schema this one cannot migrate
        raise OperationalError(
            f"restored into {home}, but checking its indexes failed ({type(exc).__name__}: {exc}); "
            "run `leaksentinel reindex` with the version that made the backup"
        ) from None
    return {
        "restored": str(home),
        "from": str(source),
        "created_at": manifest.get("created_at"),
        "files": len(manifest["files"]),
        "bytes": sum(int(f["size"]) for f in manifest["files"]),
        "rebuilt": rebuilt,
    }


def _repair_indexes(settings: Settings) -> list[str]:
    """Bring the restored indexes level with the restored database; returns the ones rebuilt."""
    from sqlalchemy import func, select

    from core.db import open_database
    from core.models import Posting
    from pipelines.detection.candidates import _PAIR, CandidateIndex
    from pipelines.detection.index import MatchIndex

    db = open_database(settings)
    rebuilt: list[str] = []
    with db.session() as sess:
        postings = int(sess.scalar(select(func.count()).select_from(Posting)) or 0)
        kept = int(sess.scalar(select(func.count()).select_from(Posting).where(Posting.text != "")) or 0)
        with_candidates = set(
            sess.scalars(select(Posting.id).where(func.length(Posting.candidate_hashes) >= 16))
        )
    # the match index of registered values: a torn copy is dropped, then sync() rebuilds or tops it up
    match = MatchIndex(settings.index_dir)
    if match.path.is_file() and match.path.stat().st_size != 8 * max(0, match._meta()["count"]):
        match.path.unlink()
        (settings.index_dir / MatchIndex.META).unlink(missing_ok=True)
        rebuilt.append("records")
    match.sync(db)
    # the candidate index behind retro-match: exactly the postings that hold candidate hashes
    candidates = CandidateIndex(settings.index_dir / "candidates")
    indexed: set[int] = set()
    try:
        import numpy as np

        for seg in candidates.segments():
            indexed.update(int(x) for x in np.unique(np.fromfile(seg, dtype=_PAIR)["posting"]))
    except (OSError, ValueError):
        indexed = {-1}
    if indexed != with_candidates:
        candidates.rebuild(db)
        rebuilt.append("candidates")
    # the search index: every posting that still has its text, and nothing else
    if not settings.search_url:
        from core.search import open_backend, reindex

        search_dir = settings.home / "search"
        try:
            backend = open_backend(settings)
            consistent = backend.count() in (kept, postings)
        except (OperationalError, ValueError, OSError):
            backend, consistent = None, False
        if not consistent:
            if backend is not None:
                backend.close()
            shutil.rmtree(search_dir, ignore_errors=True)
            backend = open_backend(settings)
            reindex(db, backend)
            rebuilt.append("search")
        assert backend is not None
        backend.close()
    return rebuilt
