"""Where evidence lives: a directory (local or shared by every machine of a fleet) or an S3-compatible bucket.

Why one small interface: the raw bytes of every posting, the rendered pages' screenshots (both
content-addressed, ``ab/abcdef...`` by SHA-256) and the fetch sidecars of postings without a text row
(``fetches/<posting id>.json``, core.fetch_record) are written by the crawl and ``scan --store``, read by
the evidence package (leaksentinel.evidence) and deleted by ``purge``. In a fleet every machine must see what any machine
fetched; a shared mount does it, so does a bucket. Both stores hold the same keys, so moving from one to the
other is a plain copy (``aws s3 sync evidence/ s3://bucket/prefix/``).

Selected by settings (core.settings): ``evidence_url = "s3://bucket/prefix"`` picks the bucket (with
``evidence_s3_endpoint_url`` for MinIO, Ceph or any S3-compatible server, ``evidence_s3_region``, and
credentials from the standard AWS chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, the file named by
``evidence_s3_credentials_file``, ``~/.aws/credentials``, an instance role); otherwise the directory
``evidence_dir`` (``evidence_path`` or ``evidence/`` in the home). Credentials are never stored in the
database, the settings or any message: only where to find them.

Keys are relative, slash-separated names of letters, digits, ``.``, ``_`` and ``-`` (no ``..``, nothing
starting with a dot): a key can never leave the directory or the bucket prefix. Writes are atomic in both:
a reader sees the whole object or none (a temporary file renamed into place; a single S3 PUT).
Errors other than "not there" raise ``EvidenceStoreError`` (an ``OSError``, so a caller that coped with a
failing disk copes with a failing bucket; and an ``OperationalError``: exit 1 and one line, no traceback).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import importlib.util
import os
import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from core.errors import BadInput, OperationalError

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "EvidenceStore",
    "EvidenceStoreError",
    "FileEvidenceStore",
    "S3EvidenceStore",
    "as_store",
    "blob_key",
    "is_digest",
    "open_evidence_store",
    "parse_s3_url",
    "put_blob",
    "put_blobs",
    "validate_evidence_settings",
]

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
_DIGEST = re.compile(r"[0-9a-f]{64}")
# S3 bucket names (the rules every S3-compatible server shares): 3-63 lowercase letters, digits, dots, hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class EvidenceStoreError(OperationalError, OSError):
    """The store could not be read or written (disk, network, permissions, bucket): an OSError for code that
    copes with a failing disk, and an OperationalError so a command ends with one line and exit 1."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative name, else ValueError (never reaches the disk or the bucket)."""
    if not isinstance(key, str) or len(key) > 512 or not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not an evidence key: {str(key)[:80]!r}")
    return key


def is_digest(value: object) -> bool:
    """Whether ``value`` is a lowercase SHA-256 hex digest (what content-addressed keys are named by)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def blob_key(digest: str) -> str:
    """The key of content-addressed bytes: ``ab/abcdef...`` (the layout of ``evidence/`` since the start)."""
    if not is_digest(digest):
        raise ValueError(f"not a SHA-256 hex digest: {str(digest)[:80]!r}")
    return f"{digest[:2]}/{digest}"


class EvidenceStore(Protocol):
    """What every evidence store does. ``get`` returns None for a missing key; ``delete`` of a missing key is
    not an error; ``keys`` lists every stored key under a prefix (for reindexing and purging)."""

    def put(self, key: str, data: bytes, *, durable: bool = True) -> None: ...

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None: ...

    def get(self, key: str, limit: int | None = None) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def check(self) -> None: ...

    def describe(self) -> str: ...


def put_blob(store: EvidenceStore, data: bytes) -> str:
    """Keep ``data`` content-addressed (written once: the same bytes again cost one existence check);
    returns its SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    key = blob_key(digest)
    if not store.exists(key):
        store.put(key, data)
    return digest


def put_blobs(store: EvidenceStore, blobs: Sequence[bytes]) -> list[str]:
    """`put_blob` for many (a crawl's batch of postings): every one durable once this returns, at the cost
    of one disk flush for the batch instead of one per blob (`FileEvidenceStore.put_many`)."""
    digests = [hashlib.sha256(data).hexdigest() for data in blobs]
    unique = {blob_key(d): data for d, data in zip(digests, blobs, strict=True)}
    store.put_many(list(unique.items()))
    return digests


def _load_syncfs() -> Any:
    """glibc's syncfs(2) (Linux): flushes a whole file system at once; None where it does not exist."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_SYNCFS = _load_syncfs()


#: A new file for writing only, never an existing one (the temporary file's name is random).
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class FileEvidenceStore:
    """Evidence in a directory: ``<root>/<key>``; works on a mount shared by several machines (every write
    is a uniquely named temporary file in the target's directory, renamed into place)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"FileEvidenceStore({str(self.root)!r})"

    def describe(self) -> str:
        return f"directory {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Atomic; ``durable``: on disk (fsync) before this returns. A crawl writes evidence durably before
        the posting's row references it; a fetch sidecar is not worth a second disk flush per posting (a
        crash may lose the last few, and their packages then say no exchange was recorded)."""
        # plain os calls on str paths: pathlib's joins and its buffered file object cost a crawl about
        # 25 µs per file, and a crawl writes two files a posting (the evidence and the fetch sidecar)
        path = os.path.join(self.root, check_key(key))
        head, name = os.path.split(path)
        tmp = os.path.join(head, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            try:
                fd = os.open(tmp, _CREATE_NEW, 0o644)
            except FileNotFoundError:  # the key's directory is made on its first write only (a mkdir per
                os.makedirs(head, exist_ok=True)  # write cost a crawl ~0.05 ms a posting)
                fd = os.open(tmp, _CREATE_NEW, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise EvidenceStoreError(
                exc.errno, f"evidence {key}: cannot write ({exc.strerror or exc})"
            ) from exc

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Each key written (atomically) unless its file already holds that many bytes (content-addressed: a
        file cut short by a crash is written again), then every one made durable by one flush of the file
        system (syncfs), or one fsync per file where that is not available or fails. Why: a crawl stores
        postings in batches, and a disk flush per posting was a tenth of its CPU."""
        written: list[str] = []
        for key, data in items:
            path = os.path.join(self.root, check_key(key))
            try:
                if os.stat(path).st_size == len(data):
                    written.append(path)  # maybe written by a run that died before its flush: flushed here
                    continue
            except OSError:
                pass
            self.put(key, data, durable=False)
            written.append(path)
        if written:
            self._flush(written)

    def _flush(self, paths: list[str]) -> None:
        if _SYNCFS is not None:
            with contextlib.suppress(OSError):
                fd = os.open(self.root, os.O_RDONLY)
                try:
                    if _SYNCFS(fd) == 0:
                        return
                finally:
                    os.close(fd)
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise EvidenceStoreError(
                    exc.errno,
                    f"evidence {os.path.basename(path)}: cannot flush to disk ({exc.strerror or exc})",
                ) from exc

    def get(self, key: str, limit: int | None = None) -> bytes | None:
        path = self._path(key)
        try:
            with path.open("rb") as handle:
                return handle.read() if limit is None else handle.read(limit)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise EvidenceStoreError(
                exc.errno, f"evidence {key}: cannot read ({exc.strerror or exc})"
            ) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except IsADirectoryError:
            return
        except OSError as exc:
            raise EvidenceStoreError(
                exc.errno, f"evidence {key}: cannot delete ({exc.strerror or exc})"
            ) from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self.root / check_key(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in sorted(files):
                if name.startswith("."):  # a write in progress (or a stray temporary file)
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if _KEY.fullmatch(key):
                    yield key

    def check(self) -> None:
        """Raise EvidenceStoreError unless the directory exists (or can be made) and takes a write."""
        probe = f".check.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / probe).write_bytes(b"")
            (self.root / probe).unlink()
        except OSError as exc:
            raise EvidenceStoreError(
                exc.errno, f"evidence directory {self.root} is not writable ({exc.strerror or exc})"
            ) from exc


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")`` (prefix empty or ending in ``/``);
    BadInput naming what is wrong, never echoing credentials someone put into the URL."""
    parts = urlsplit(url.strip())
    if parts.scheme != "s3":
        raise BadInput(
            "setting evidence_url: expected s3://BUCKET[/PREFIX] (leave it empty for the evidence directory)"
        )
    if "@" in parts.netloc:
        raise BadInput(
            "setting evidence_url: credentials do not belong in the URL; use AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or evidence_s3_credentials_file"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise BadInput(f"setting evidence_url: {bucket[:80]!r} is not a valid bucket name")
    if parts.query or parts.fragment:
        raise BadInput("setting evidence_url: no query or fragment, only s3://BUCKET[/PREFIX]")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except ValueError:
            raise BadInput(
                f"setting evidence_url: prefix {prefix[:80]!r} may hold letters, digits, '.', '_', '-' and '/'"
            ) from None
        prefix += "/"
    return bucket, prefix


def _not_found(exc: Any) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class S3EvidenceStore:
    """Evidence in an S3-compatible bucket under a prefix, through boto3 (AWS S3, MinIO, Ceph RGW, ...)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials_file: str | None = None,
    ) -> None:
        try:
            import boto3
            import botocore.session
            from botocore.config import Config
        except ImportError:
            raise BadInput(
                "evidence_url is an S3 bucket but boto3 is not installed: pip install 'leaksentinel[s3]'"
            ) from None
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url or None
        core = botocore.session.Session()
        if credentials_file:
            core.set_config_variable("credentials_file", str(Path(credentials_file).expanduser()))
        session = boto3.Session(botocore_session=core, region_name=region or None)
        config = Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 5},
            # S3-compatible servers behind an endpoint URL (MinIO, Ceph) want path-style addressing.
            s3={"addressing_style": "path"} if self.endpoint_url else {},
        )
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)

    def __repr__(self) -> str:
        return f"S3EvidenceStore({self.describe()!r})"

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _error(self, what: str, key: str, exc: Exception) -> EvidenceStoreError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        reason = f"{code}" if code else f"{type(exc).__name__}: {exc}"
        return EvidenceStoreError(f"evidence {key}: cannot {what} in {self.describe()} ({reason})")

    def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """A single PUT: durable once the server answers, whatever ``durable`` says."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("write", key, exc) from exc

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """One PUT each unless the object is there (each durable once the server answers)."""
        for key, data in items:
            if not self.exists(key):
                self.put(key, data)

    def get(self, key: str, limit: int | None = None) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if limit is not None:
            if limit <= 0:
                return b"" if self.exists(key) else None
            args["Range"] = f"bytes=0-{limit - 1}"
        try:
            response = self._client.get_object(**args)
            with contextlib.closing(response["Body"]) as body:
                data: bytes = body.read()
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise self._error("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from exc
        return data if limit is None else data[:limit]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _not_found(exc):
                return False
            raise self._error("check", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("check", key, exc) from exc
        return True

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if not _not_found(exc):
                raise self._error("delete", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("delete", key, exc) from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        sub = check_key(prefix.rstrip("/")) + "/" if prefix.strip("/") else ""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + sub):
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    if _KEY.fullmatch(key):
                        yield key
        except (BotoCoreError, ClientError) as exc:
            raise self._error("list", prefix or "(all)", exc) from exc

    def check(self) -> None:
        """Raise EvidenceStoreError unless the bucket answers (reachable, exists, credentials accepted)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            why = {"404": "no such bucket", "403": "access denied (credentials or policy)"}.get(code, code)
            raise EvidenceStoreError(f"cannot reach the bucket {self.describe()}: {why}") from exc
        except BotoCoreError as exc:
            raise EvidenceStoreError(f"cannot reach the bucket {self.describe()}: {exc}") from exc


def validate_evidence_settings(settings: Settings) -> None:
    """BadInput, at load time, for an evidence store that cannot work: a malformed ``evidence_url``, both a
    directory and a bucket, a bucket without boto3, a credentials file that is not there. (Whether the bucket
    answers is ``check()``: the network is not asked while settings load.)"""
    if not settings.evidence_url:
        for name in ("evidence_s3_endpoint_url", "evidence_s3_region", "evidence_s3_credentials_file"):
            if getattr(settings, name):
                raise BadInput(
                    f"setting {name} is set but evidence_url is empty (set evidence_url = s3://...)"
                )
        return
    parse_s3_url(settings.evidence_url)
    if settings.evidence_path:
        raise BadInput(
            "settings evidence_path and evidence_url are both set: evidence goes to one store "
            "(a directory: evidence_path; a bucket: evidence_url)"
        )
    endpoint = settings.evidence_s3_endpoint_url
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            raise BadInput(
                "setting evidence_s3_endpoint_url: expected http(s)://HOST[:PORT] (no credentials in it)"
            )
    if settings.evidence_s3_credentials_file:
        path = Path(settings.evidence_s3_credentials_file).expanduser()
        if not path.is_file():
            raise BadInput(f"setting evidence_s3_credentials_file: no such file: {path}")
    if importlib.util.find_spec("boto3") is None:
        raise BadInput(
            "evidence_url is an S3 bucket but boto3 is not installed: pip install 'leaksentinel[s3]'"
        )


_CACHE: dict[tuple[Any, ...], EvidenceStore] = {}
_LOCK = threading.Lock()


def open_evidence_store(settings: Settings) -> EvidenceStore:
    """The store the settings name (one per process and configuration: a boto3 client is reused, never
    shared with a forked child)."""
    if not settings.evidence_url:
        return FileEvidenceStore(settings.evidence_dir)
    ident = (
        os.getpid(),
        settings.evidence_url,
        settings.evidence_s3_endpoint_url,
        settings.evidence_s3_region,
        settings.evidence_s3_credentials_file,
    )
    with _LOCK:
        store = _CACHE.get(ident)
        if store is None:
            bucket, prefix = parse_s3_url(settings.evidence_url)
            store = S3EvidenceStore(
                bucket,
                prefix,
                endpoint_url=settings.evidence_s3_endpoint_url or None,
                region=settings.evidence_s3_region or None,
                credentials_file=settings.evidence_s3_credentials_file or None,
            )
            _CACHE.clear()  # another pid or configuration: the old clients are of no use here
            _CACHE[ident] = store
        return store


def as_store(target: EvidenceStore | Settings | Path | str) -> EvidenceStore:
    """A store from what callers hold: a store, the settings, or (older callers) the evidence directory."""
    from core.settings import Settings

    if isinstance(target, Path | str):
        return FileEvidenceStore(target)
    if isinstance(target, Settings):
        return open_evidence_store(target)
    return target
