"""The match index: a memory-mapped sorted array of 64-bit hash prefixes of every registered value.

Why this structure: a candidate costs one binary search in a shared, read-only mapping (8 bytes per
registered value, whatever the number of tenants), and only the rare hits go to the database for the
record key. Registering records merges their prefixes into a new file (written aside, then renamed),
so readers never see a half-written index and never block.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from core.db import Database
from core.models import RecordHash

__all__ = ["MatchIndex", "prefixes_of"]

_DTYPE = np.dtype("<u8")
_lock = threading.Lock()

try:  # the native scanner's directory lookup (optional build): numpy's searchsorted otherwise
    from pipelines.detection._scanner import bloom_build as _bloom_build
    from pipelines.detection._scanner import contains_sorted as _native_contains
except ImportError:  # pragma: no cover
    _native_contains = None
    _bloom_build = None

#: Values per directory bucket: the directory costs 4 bytes per bucket in memory (not on disk).
_BUCKET = 16


def prefixes_of(hex_hashes: Iterable[str]) -> np.ndarray:
    """The first 8 bytes of each hex hash, as unsigned 64-bit integers (decoded in one C call)."""
    if isinstance(hex_hashes, list) and hex_hashes and set(map(len, hex_hashes)) == {32}:
        # the usual input, whole 16-byte hashes: joined and decoded whole, no per-item slicing
        whole = np.frombuffer(bytes.fromhex("".join(hex_hashes)), dtype=">u8")
        return whole[::2].astype(_DTYPE)
    joined = "".join(h[:16] for h in hex_hashes)
    if not joined:
        return np.zeros(0, dtype=_DTYPE)
    return np.frombuffer(bytes.fromhex(joined), dtype=">u8").astype(_DTYPE)


def sorted_unique(*parts: np.ndarray) -> np.ndarray:
    """Sorted distinct values of the arrays together (a sort and a neighbour compare: several times
    faster than ``np.unique``'s hashing path on tens of millions of uint64)."""
    values = np.concatenate([np.asarray(p, dtype=_DTYPE) for p in parts]) if parts else np.zeros(0, _DTYPE)
    if values.shape[0] < 2:
        return values
    values.sort()
    keep = np.empty(values.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


class MatchIndex:
    """``MatchIndex(dir).contains(prefixes)``: which candidates may be registered (no false negatives)."""

    FILE = "records.u64"
    META = "records.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._array: np.ndarray | None = None
        self._generation = -1
        self._directory: tuple[np.ndarray, int] | None = None
        self._bloom: bytes | None = None
        self._meta_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        #: The metadata file's name as a string: it is looked at before every posting's look-up (a
        #: `Path` join and its conversion back cost more than the stat itself).
        self._meta_name = os.fspath(directory / self.META)

    @property
    def path(self) -> Path:
        return self.directory / self.FILE

    def _meta(self) -> dict[str, Any]:
        """The published metadata; re-read only when the file changed (it is replaced on publish)."""
        try:
            st = os.stat(self._meta_name)
        except OSError:
            return {"generation": -1, "count": 0, "max_id": -1, "rows": -1, "types": None}
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._meta_cache is not None and self._meta_cache[0] == stamp:
            return dict(self._meta_cache[1])
        meta = self._read_meta()
        self._meta_cache = (stamp, meta)
        return dict(meta)

    def _read_meta(self) -> dict[str, Any]:
        try:
            data = json.loads((self.directory / self.META).read_text())
            types = data.get("types")
            return {
                "generation": int(data["generation"]),
                "count": int(data["count"]),
                "max_id": int(data.get("max_id", -1)),
                "rows": int(data.get("rows", -1)),
                # an index written before the types were kept: None (every type may be registered)
                "types": sorted(map(str, types)) if isinstance(types, list) else None,
            }
        except (OSError, ValueError, KeyError, TypeError):
            return {"generation": -1, "count": 0, "max_id": -1, "rows": -1, "types": None}

    def exists(self) -> bool:
        return self.path.is_file() and self._meta()["generation"] >= 0

    def load(self) -> np.ndarray:
        """The current mapping; re-mapped when another process published a newer generation."""
        meta = self._meta()
        if self._array is None or meta["generation"] != self._generation:
            if not self.path.is_file() or meta["count"] == 0:
                self._array = np.zeros(0, dtype=_DTYPE)
            else:
                self._array = np.memmap(self.path, dtype=_DTYPE, mode="r")
            self._generation = meta["generation"]
            self._directory = None
            self._bloom = None
        return self._array

    @property
    def generation(self) -> int:
        """The published generation this process reads (a new one after every change)."""
        self.load()
        return self._generation

    def field_types(self) -> frozenset[str] | None:
        """The field types of the registered values the index holds, as of its last ``sync``; None when
        not known (an index written by ``merge``, or before the types were kept): any type may be.

        Why: a caller that keeps no candidate hashes (``scan`` without ``--store``) hashes only these."""
        types = self._meta()["types"]
        return None if types is None else frozenset(types)

    def __len__(self) -> int:
        return int(self.load().shape[0])

    def contains(self, prefixes: np.ndarray) -> np.ndarray:
        """A boolean mask: True where the prefix is in the index."""
        array = self.load()
        if array.shape[0] == 0 or prefixes.shape[0] == 0:
            return np.zeros(prefixes.shape[0], dtype=bool)
        if _native_contains is not None:
            directory, shift = self._bucket_directory(array)
            queries = np.ascontiguousarray(prefixes, dtype=_DTYPE)
            if self._bloom is None and _bloom_build is not None:
                self._bloom = _bloom_build(array)  # in memory, about a byte per value
            found = _native_contains(array, directory, queries, shift, self._bloom)
            return np.frombuffer(found, dtype=np.uint8).astype(bool)
        pos = np.searchsorted(array, prefixes)
        pos[pos >= array.shape[0]] = array.shape[0] - 1
        return np.asarray(array[pos] == prefixes)

    def _bucket_directory(self, array: np.ndarray) -> tuple[np.ndarray, int]:
        """Where each bucket of the top bits starts: a lookup reads one bucket of ~16 values instead of
        binary-searching the whole mapping (two cache misses instead of ~20 on 10 M values)."""
        if self._directory is None:
            bits = max(1, min(28, int(np.ceil(np.log2(max(2, array.shape[0] // _BUCKET))))))
            shift = 64 - bits
            bounds = np.arange(1 << bits, dtype=_DTYPE) << np.uint64(shift)
            starts = np.searchsorted(array, bounds).astype(np.uint32)
            directory = np.append(starts, np.uint32(array.shape[0])).astype(np.uint32)
            self._directory = (directory, shift)
        return self._directory

    def _publish(
        self, values: np.ndarray, *, max_id: int = -1, rows: int = -1, types: Iterable[str] | None = None
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        generation = self._meta()["generation"] + 1
        tmp = self.directory / f".{self.FILE}.{os.getpid()}.tmp"
        values.astype(_DTYPE).tofile(tmp)
        os.replace(tmp, self.path)
        meta_tmp = self.directory / f".{self.META}.{os.getpid()}.tmp"
        meta_tmp.write_text(
            json.dumps(
                {
                    "generation": generation,
                    "count": int(values.shape[0]),
                    "max_id": max_id,
                    "rows": rows,
                    "types": None if types is None else sorted(set(types)),
                }
            )
        )
        os.replace(meta_tmp, self.directory / self.META)
        self._array = None

    def merge(self, prefixes: np.ndarray) -> int:
        """Add prefixes in this process (tests, benchmarks); registrations go through ``sync``."""
        with _lock:
            current = np.array(self.load()) if self.exists() else np.zeros(0, dtype=_DTYPE)
            merged = sorted_unique(current, prefixes)
            self._publish(merged)
            return int(merged.shape[0])

    def sync(self, db: Database, batch: int = 200_000) -> int:
        """Bring the index level with the database: merge rows added since the last sync, or rebuild
        when rows were removed. Cheap when nothing changed (two indexed aggregate queries)."""
        with db.session() as sess:
            max_id = int(sess.scalar(select(func.max(RecordHash.id))) or 0)
            rows = int(sess.scalar(select(func.count()).select_from(RecordHash)) or 0)
        meta = self._meta()
        if self.exists() and meta["max_id"] == max_id and meta["rows"] == rows and meta["types"] is not None:
            return int(meta["count"])
        if (
            not self.exists()
            or meta["max_id"] < 0
            or rows < meta["rows"]
            or meta["max_id"] > max_id
            or meta["types"] is None  # written before the types were kept: read once whole
        ):
            return self._rebuild(db, max_id, rows, batch)
        new, types = self._read(db, RecordHash.id > meta["max_id"], batch)
        with _lock:
            merged = sorted_unique(np.array(self.load()), new)
            self._publish(merged, max_id=max_id, rows=rows, types=types | set(meta["types"]))
        return int(merged.shape[0])

    def _read(self, db: Database, where: Any, batch: int) -> tuple[np.ndarray, set[str]]:
        """The rows' prefixes, and their field types."""
        chunks: list[np.ndarray] = []
        types: set[str] = set()
        with db.session() as sess:
            result = sess.execute(
                select(RecordHash.hash, RecordHash.field_type).where(where).execution_options(yield_per=batch)
            )
            for part in result.partitions(batch):
                hashes, kinds = zip(*part, strict=True)
                chunks.append(prefixes_of(list(hashes)))
                types.update(kinds)
        return sorted_unique(*chunks), types

    def _rebuild(self, db: Database, max_id: int, rows: int, batch: int) -> int:
        values, types = self._read(db, RecordHash.id <= max_id, batch)
        with _lock:
            self._publish(values, max_id=max_id, rows=rows, types=types)
        return int(values.shape[0])

    def filter(self, hex_hashes: Sequence[str]) -> list[str]:
        """The hashes that may be registered (the rest certainly are not)."""
        if not hex_hashes:
            return []
        mask = self.contains(prefixes_of(hex_hashes))
        return [h for h, hit in zip(hex_hashes, mask, strict=True) if hit]
