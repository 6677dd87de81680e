"""The detection engine: from a posting's text to findings per tenant.

Why this shape: candidates are extracted once, canonicalised and keyed-hashed exactly as the company's
``leaksentinel hash`` did, and looked up by hash, so the cost is one lookup per candidate whatever the
number of registered values; the findings are grouped to one per (posting, tenant, record).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import String, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

from core.canonical import CORROBORATING, FIELD_TYPES, IDENTIFYING, fold
from core.db import READ_ONLY_OPTION, Database
from core.hashing import DIGEST_BYTES
from core.masking import mask
from core.models import RecordHash, Tenant, WatchItem
from pipelines.detection.documents import MAX_TEXT_CHARS as FOLD_CHARS
from pipelines.detection.documents import DocumentMatcher
from pipelines.detection.extract import Candidate
from pipelines.detection.fastscan import HashedScan, HashedScanner
from pipelines.detection.index import MatchIndex
from pipelines.detection.keywords import MAX_TEXT_CHARS as KEYWORD_CHARS
from pipelines.detection.keywords import KeywordMatcher
from pipelines.detection.lines import (
    Deadline,
    LineReader,
    find_text,
    lower_text,
    native_switched_on,
    native_text,
)
from pipelines.detection.lookalikes import LookalikeMatcher
from pipelines.detection.regexes import (
    SET_MAX_MEM,
    BlockMatch,
    RegexMatcher,
    block_matches,
    build_sets,
    encode_text,
    split_block_matches,
    text_options,
)
from pipelines.detection.secrets import TEXT_PATTERNS as SECRET_PATTERNS
from pipelines.detection.secrets import find_secrets
from pipelines.detection.severity import record_severity
from pipelines.detection.yara_watch import YaraMatcher
from pipelines.fastsql import Prepared

__all__ = [
    "DbHashLookup",
    "Deadline",
    "DetectionResult",
    "Detector",
    "Finding",
    "ScanStats",
    "WatchSnapshot",
    "time_budget",
]

#: Extraction time limit per posting: a base plus so much per MB of text.
DEADLINE_BASE_S = 30.0
DEADLINE_PER_MB_S = 3.0
#: Time always allowed for reading again the few lines a registered hash or a watched domain hit.
LISTING_FLOOR_S = 2.0


def time_budget(chars: int) -> float:
    """The per-posting time budget: it grows with the size, so a big dump is read whole while junk
    stays bounded."""
    return DEADLINE_BASE_S + DEADLINE_PER_MB_S * chars / 1_000_000


_COMBO = re.compile(r"^\s*[^\s:;|,]+@[^\s:;|,]+\s*[:;|]\s*\S")


@dataclass(frozen=True)
class Finding:
    tenant_id: int
    tenant: str
    kind: str
    line: int
    severity: str
    record_key: str | None = None
    fields: tuple[str, ...] = ()
    watch: str | None = None
    watch_id: int | None = None
    overlap: float | None = None
    masked: str | None = None
    #: How a look-alike was made from the watched domain (kind ``lookalike`` only): an additive field.
    technique: str | None = None

    def as_json(self, posting: str) -> dict[str, object]:
        """The contract's `scan --json` object."""
        out: dict[str, object] = {"posting": posting, "tenant": self.tenant, "kind": self.kind}
        if self.kind == "record":
            out["record_key"] = self.record_key
            out["fields"] = list(self.fields)
        if self.watch is not None:
            out["watch"] = self.watch
        if self.overlap is not None:
            out["overlap"] = round(self.overlap, 3)
        out["line"] = self.line
        out["severity"] = self.severity
        if self.masked is not None:
            out["masked"] = self.masked
        if self.technique is not None:
            out["technique"] = self.technique
        return out


@dataclass(frozen=True)
class Hit:
    tenant_id: int
    record_key: str
    field_type: str
    hash: str
    watch_id: int


class HashLookup(Protocol):
    def lookup(self, hashes: Sequence[str]) -> list[Hit]: ...


#: Built once (a statement built per look-up cost more than SQLite running it).
_RECORD_COLUMNS = (
    RecordHash.tenant_id,
    RecordHash.record_key,
    RecordHash.field_type,
    RecordHash.hash,
    RecordHash.watch_id,
)
_RECORD_HITS = select(*_RECORD_COLUMNS).where(RecordHash.hash.in_(bindparam("hashes", expanding=True)))
#: The same look-up with the hashes bound as one value (a JSON array on SQLite, an array on PostgreSQL),
#: run on the DBAPI cursor (pipelines.fastsql): an expanding IN is rendered again at every call, and a
#: crawl looks up the hits of every other posting. Both use the hash index (one search per value).
#: Per dialect: the statement, and how the hashes become its one value.
_RECORD_HITS_ONE_VALUE: dict[str, tuple[Prepared, Callable[[list[str]], Any]]] = {
    "sqlite": (
        Prepared(
            select(*_RECORD_COLUMNS).where(
                RecordHash.hash.in_(
                    select(literal_column("value")).select_from(func.json_each(bindparam("hashes")))
                )
            )
        ),
        json.dumps,
    ),
    "postgresql": (
        Prepared(
            select(*_RECORD_COLUMNS).where(RecordHash.hash == any_(bindparam("hashes", type_=ARRAY(String))))
        ),
        list,
    ),
}


class DbHashLookup:
    """Filters candidates through the memory-mapped match index, then fetches the few hits' records.

    The records of hashes seen recently are remembered while the index generation stays the same (names
    and dates of birth of registered people recur in posting after posting); registering or removing
    records publishes a new generation, which empties the memory.
    """

    CHUNK = 500
    REMEMBER = 100_000

    def __init__(self, db: Database, index: MatchIndex | None = None) -> None:
        self.db = db
        self._reads = db.engine.execution_options(**{READ_ONLY_OPTION: True})
        self.index = index
        self._known: dict[str, list[Hit]] = {}
        self._generation: int | None = None

    def lookup(self, hashes: Sequence[str]) -> list[Hit]:
        hits: list[Hit] = []
        unique = sorted(set(hashes))
        if self.index is not None:
            unique = self.index.filter(unique)
            generation = self.index.generation
            if generation != self._generation or len(self._known) > self.REMEMBER:
                self._known, self._generation = {}, generation
            todo = [h for h in unique if h not in self._known]
        else:
            todo = unique
        found: dict[str, list[Hit]] = {h: [] for h in todo}
        if todo:
            for row in self._rows(todo):
                found[row[3]].append(Hit(*row))
        if self.index is None:
            return [hit for h in todo for hit in found[h]]
        self._known.update(found)
        for h in unique:
            hits.extend(self._known[h])
        return hits

    def _rows(self, todo: list[str]) -> list[tuple[Any, ...]]:
        """The registered hashes' rows, read without the write lock a crawl's storing needs (SQLite: a
        read-only connection, each statement its own snapshot)."""
        rows: list[tuple[Any, ...]] = []
        with self._reads.connect() as conn:
            one_value = _RECORD_HITS_ONE_VALUE.get(conn.dialect.name)
            for i in range(0, len(todo), self.CHUNK):
                chunk = todo[i : i + self.CHUNK]
                if one_value is None:
                    rows.extend(tuple(r) for r in conn.execute(_RECORD_HITS, {"hashes": chunk}))
                else:
                    statement, as_value = one_value
                    rows.extend(statement.rows(conn, {"hashes": as_value(chunk)}))
            conn.commit()
        return rows


@dataclass
class WatchSnapshot:
    """What the tenants watch besides records, read once per detector."""

    tenants: dict[int, str] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    domains: list[tuple[int, str, int]] = field(default_factory=list)  # tenant_id, domain, watch_id
    keywords: list[tuple[int, int, str]] = field(default_factory=list)  # tenant_id, watch_id, keyword
    regexes: list[tuple[int, int, str]] = field(default_factory=list)  # tenant_id, watch_id, pattern
    documents: list[tuple[int, int, str, set[int]]] = field(default_factory=list)  # ..., name, fingerprints
    #: The watched domains' look-alikes, generated at load (None: built by the detector from `domains`).
    lookalikes: LookalikeMatcher | None = None
    yara: list[tuple[int, int, str]] = field(default_factory=list)  # tenant_id, watch_id, rules source
    #: The YARA watches compiled once, at load (None: compiled by the detector from `yara`).
    yara_rules: YaraMatcher | None = None

    @classmethod
    def load(cls, db: Database, cache_dir: Path | None = None) -> WatchSnapshot:
        """``cache_dir``: where the look-alikes of watched domains are kept across processes."""
        snap = cls()
        regions: set[str] = set()
        with db.session() as sess:
            for tenant in sess.scalars(select(Tenant)):
                snap.tenants[tenant.id] = tenant.name
                regions.update(str(r).upper() for r in (tenant.regions or []))
            for item in sess.scalars(select(WatchItem).where(WatchItem.kind != "records")):
                if item.kind == "domain":
                    snap.domains.append((item.tenant_id, item.value.lower(), item.id))
                elif item.kind == "keyword":
                    snap.keywords.append((item.tenant_id, item.id, item.value))
                elif item.kind == "regex":
                    snap.regexes.append((item.tenant_id, item.id, item.value))
                elif item.kind == "yara":
                    source = (item.data or {}).get("source")
                    if isinstance(source, str):
                        snap.yara.append((item.tenant_id, item.id, source))
                elif item.kind == "document":
                    fps = {int(h, 16) for h in (item.data or {}).get("fingerprints", [])}
                    snap.documents.append((item.tenant_id, item.id, item.name or item.value, fps))
        snap.regions = tuple(sorted(regions))
        if snap.domains:
            snap.lookalikes = LookalikeMatcher(snap.domains, cache_dir=cache_dir)
        if snap.yara:
            snap.yara_rules = YaraMatcher(snap.yara)
        return snap


@dataclass
class DetectionResult:
    findings: list[Finding]
    #: The posting's candidate keyed hashes, 16 bytes each, for retro-matching (mostly distinct: the
    #: scanner dedupes within chunks of a posting; a repeat is harmless to the candidate index).
    #: Empty when detection was asked to keep none (`Detector.detect(candidates=False)`).
    candidate_hashes: bytes
    #: True when extraction hit its time limit before the end of the text (the rest was not read).
    partial: bool = False
    #: Lines the native scanner handed back to Python, and of those the lines extract.py read
    #: (`HashedScan`): on ASCII and CJK text both stay 0; a rise means a 30-100x slower path.
    deferred_lines: int = 0
    python_lines: int = 0


@dataclass
class ScanStats:
    """Totals over a detector's postings (for ``scan --stats`` and crawl statistics)."""

    postings: int = 0
    partial: int = 0
    deferred_lines: int = 0
    python_lines: int = 0

    def add(self, result: DetectionResult) -> None:
        self.postings += 1
        self.partial += int(result.partial)
        self.deferred_lines += result.deferred_lines
        self.python_lines += result.python_lines


class Detector:
    """Finds every tenant's registered records and watched domains in a text."""

    def __init__(self, key: bytes, lookup: HashLookup, snapshot: WatchSnapshot) -> None:
        self.key = key
        self.lookup = lookup
        self.snapshot = snapshot
        self.keywords = KeywordMatcher(snapshot.keywords) if snapshot.keywords else None
        self.regexes = RegexMatcher(snapshot.regexes) if snapshot.regexes else None
        self.documents = DocumentMatcher(snapshot.documents) if snapshot.documents else None
        if snapshot.lookalikes is None and snapshot.domains:
            snapshot.lookalikes = LookalikeMatcher(snapshot.domains)
        if snapshot.yara_rules is None and snapshot.yara:
            snapshot.yara_rules = YaraMatcher(snapshot.yara)
        self._hasher: HashedScanner | None = None
        #: The secret detectors' patterns and the regex watches' whole-text ones in one Set: a posting
        #: both stages read (it names a watched domain) is read by one Set pass, not two.
        self._shared_sets = (
            build_sets([*SECRET_PATTERNS, *self.regexes.whole_patterns], text_options(SET_MAX_MEM))
            if self.regexes is not None and self.regexes.whole_patterns and snapshot.domains
            else None
        )
        #: Running totals of every `detect` call of this detector.
        self.stats = ScanStats()

    @classmethod
    def from_database(cls, db: Database, key: bytes, index_dir: Path | None = None) -> Detector:
        """A detector over the database; with ``index_dir``, candidates go through the match index first."""
        index = None
        if index_dir is not None:
            index = MatchIndex(index_dir)
            index.sync(db)
        cache = index_dir / "lookalikes" if index_dir is not None else None
        return cls(key, DbHashLookup(db, index), WatchSnapshot.load(db, cache))

    def detect(
        self, text: str, deadline: Deadline | None = None, *, candidates: bool = True
    ) -> DetectionResult:
        """Every stage shares one time budget (`deadline`, else one sized to the text); a stage that
        reaches it stops reading, and the result says ``partial``.

        ``candidates=False``: the caller keeps no candidate hashes (``scan`` without ``--store``), so
        only the field types some tenant registered are hashed (the match index knows them) and the
        result's ``candidate_hashes`` is empty. The findings are the same."""
        if deadline is None:
            deadline = Deadline.after(time_budget(len(text)))
        types = None if candidates else self.registered_types()
        scan = self.hasher.scan(text, deadline_s=deadline.remaining(), types=types)
        # Only the lines holding a registered hash are read again for their candidates (raw text for
        # masking, field types): the rest of the posting is known not to match from its hashes alone.
        hit_mask = self._hit_mask(scan)
        # listing the few hit lines is bounded by their number: it gets a floor, not what is left
        listing_s = max(LISTING_FLOOR_S, deadline.remaining())
        findings = self._records(self._hit_lines(scan, hit_mask), text, scan, listing_s)
        # the lowered text (domains, look-alikes, secrets) and the folded one (keywords, documents) are
        # made once per posting, not once per stage
        lowered = lower_text(text) if self.snapshot.domains else ""
        # where each watched domain's needles first stand in `lowered`: looked for once, by the domain
        # candidates, and read again by the secret detectors' owners
        first: dict[str, int] = {}
        findings += self._domains(
            self._domain_candidates(text, listing_s, lowered, first, scan.line_starts), text
        )
        findings += self._lookalikes(text, deadline, lowered)
        # the UTF-8 the regex watches read, encoded once: the secret detectors read the same, and when
        # both read it, one Set pass finds the blocks each stage reads again
        encoded = encode_text(text) if self.regexes is not None else None
        watch_blocks: list[BlockMatch] | None = None
        secret_blocks: list[BlockMatch] | None = None
        if self._shared_sets is not None and encoded is not None and self._secret_owners(lowered, first):
            secret_blocks, watch_blocks = split_block_matches(
                block_matches(encoded, deadline, self._shared_sets), len(SECRET_PATTERNS)
            )
        findings += self._watches(text, deadline, encoded, watch_blocks, lowered)
        findings += self._secrets(text, deadline, lowered, encoded, first, secret_blocks)
        result = DetectionResult(
            findings=findings,
            candidate_hashes=scan.digests if candidates else b"",
            partial=bool(scan.partial) or deadline.exceeded,
            deferred_lines=scan.deferred_lines,
            python_lines=scan.python_lines,
        )
        self.stats.add(result)
        return result

    def registered_types(self) -> frozenset[str] | None:
        """The field types some tenant registered values of, per the match index; None (any) when the
        detector has no index or the index does not know them."""
        index = getattr(self.lookup, "index", None)
        return index.field_types() if isinstance(index, MatchIndex) else None

    @property
    def hasher(self) -> HashedScanner:
        if self._hasher is None:
            self._hasher = HashedScanner(self.key, self.snapshot.regions)
        return self._hasher

    def _hit_mask(self, scan: HashedScan) -> np.ndarray:
        """Which of the scan's digests may be registered (one flag per digest in `scan.digests`)."""
        index = getattr(self.lookup, "index", None)
        if isinstance(index, MatchIndex):
            return index.contains(scan.prefixes())
        # no match index: the lookup answers for every distinct digest
        count = len(scan.digests) // DIGEST_BYTES
        hexes = [scan.digests[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES].hex() for i in range(count)]
        found = {hit.hash for hit in self.lookup.lookup(sorted(set(hexes)))} if hexes else set()
        return np.array([h in found for h in hexes], dtype=bool)

    def _domain_candidates(
        self,
        text: str,
        listing_s: float,
        lowered: str | None = None,
        first: dict[str, int] | None = None,
        line_starts: bytes = b"",
    ) -> list[Candidate]:
        """Email candidates that may be on a watched domain: lines naming one, and non-ASCII lines
        with an '@' (an address written in full-width or Unicode letters folds to its ASCII form).

        Only each watch's first address makes a finding (`_domains`), and an address on a domain can
        only stand on a line naming it or on one of the few lines with a non-ASCII host. So each watch
        reads its own lines, in order, in growing batches, until it has its first address: a dump of
        100,000 addresses on a watched domain costs one batch, not a line number and a listing per
        address. The cost follows the lines read, never the lines of the posting.

        ``first``, when given, is filled with each needle's first offset in `lowered` (-1: absent);
        ``line_starts``: the scan's line starts of `text` (lets the listing jump to its lines)."""
        if not self.snapshot.domains:
            return []
        lowered = lower_text(text) if lowered is None else lowered
        listing = Deadline.after(listing_s)
        unicode_hosts: list[int] = []
        if not text.isascii():
            unicode_hosts = _unicode_host_line_numbers(text, listing)
        first = {} if first is None else first
        listed: dict[int, list[Candidate]] = {}  # line -> its email candidates

        hasher = self.hasher

        def read(lines: list[int]) -> None:
            todo = [n for n in lines if n not in listed]
            listed.update((n, []) for n in todo)
            # only the email candidates (the same as filtering the full listing), through the posting's
            # line starts when the scan recorded them
            for c, _digest in hasher.hashed_candidates(
                text, todo, deadline_s=listing.remaining(), line_starts=line_starts, field_type="email"
            ):
                listed[c.line].append(c)

        for _, domain, _ in self.snapshot.domains:
            needles = []
            for needle in _sorted_needles(domain):
                if needle not in first:
                    first[needle] = find_text(lowered, needle)
                if first[needle] >= 0:  # an absent needle names no line
                    needles.append(_needle_lines(lowered, needle, first[needle]))
            if unicode_hosts:
                needles.append(iter(unicode_hosts))
            if not needles:
                continue
            # one source: already distinct and in order (one look per line)
            lines = needles[0] if len(needles) == 1 else _distinct(heapq.merge(*needles))
            batch, found = 8, False  # most postings: an address on the first lines
            while not found and not listing.expired():
                part = list(itertools.islice(lines, batch))
                if not part:
                    break
                read(part)
                found = any(_on_domain(c, domain) for n in part for c in listed[n])
                batch *= 4
        return [c for n in sorted(listed) for c in listed[n]]

    @staticmethod
    def _hit_lines(scan: HashedScan, hit_mask: np.ndarray) -> dict[str, np.ndarray]:
        """hex digest -> the lines it stands on, for the digests that may be registered."""
        if not hit_mask.any() or scan.pairs.shape[0] == 0:
            return {}
        rows = scan.pairs[hit_mask.take(scan.pairs[:, 0])]  # take: faster than indexing by uint32
        if len(rows) <= _FEW_ROWS:
            return _few_hit_lines(scan.digests, rows)
        order = np.lexsort((rows[:, 1], rows[:, 0]))
        ids, lines = rows[order, 0], rows[order, 1]
        bounds = np.flatnonzero(np.diff(ids)) + 1
        out: dict[str, np.ndarray] = {}
        start = 0
        for end in [*bounds.tolist(), len(ids)]:
            index = int(ids[start])
            digest = scan.digests[index * DIGEST_BYTES : (index + 1) * DIGEST_BYTES].hex()
            # a digest can stand twice in `digests` (the scanner hashes in chunks): its lines merge
            out[digest] = _union(out[digest], lines[start:end]) if digest in out else lines[start:end]
            start = end
        return out

    def _records(
        self, lines_by_hash: dict[str, np.ndarray], text: str, scan: HashedScan, listing_s: float
    ) -> list[Finding]:
        """One finding per (tenant, record), decided from the hits' field types and lines alone; only
        the line whose value is shown masked (and an email's line, for "with password") is read again."""
        if not lines_by_hash:
            return []
        by_record: dict[tuple[int, str], list[Hit]] = {}
        for hit in self.lookup.lookup(list(lines_by_hash)):
            by_record.setdefault((hit.tenant_id, hit.record_key), []).append(hit)
        # (tenant, record) -> field type -> lines, and the record's hashes of each type
        per_record: dict[tuple[int, str], dict[str, set[int]]] = {}
        hashes: dict[tuple[int, str], dict[str, set[str]]] = {}
        chosen: dict[tuple[int, str], tuple[set[str], str, int]] = {}
        for key, record_hits in by_record.items():
            types = {hit.field_type for hit in record_hits}
            if len(types) < 2 and not IDENTIFYING.intersection(types):
                continue  # a lone name or date: never a finding (the common case: such values recur)
            matched: dict[str, set[int]] = {}
            of_type: dict[str, set[str]] = {}
            for hit in record_hits:
                lines = lines_by_hash.get(hit.hash)
                if lines is not None:
                    matched.setdefault(hit.field_type, set()).update(lines.tolist())
                    of_type.setdefault(hit.field_type, set()).add(hit.hash)
            accepted = _accepted_fields(matched)
            if accepted:
                # the value shown: an identifying one before a corroborating one, then the earliest line
                first_type, first_line = min(
                    ((f, min(matched[f])) for f in accepted),
                    key=lambda item: (item[0] not in IDENTIFYING, item[1], FIELD_TYPES.index(item[0])),
                )
                chosen[key] = (accepted, first_type, first_line)
                per_record[key], hashes[key] = matched, of_type
        if not chosen:
            return []
        shown = {line for _, _, line in chosen.values()}
        # only the shown values' types are read from the listing (one type: the others not built)
        shown_types = {first_type for _, first_type, _ in chosen.values()}
        only = next(iter(shown_types)) if len(shown_types) == 1 else None
        listed: dict[int, list[tuple[Candidate, str]]] = defaultdict(list)
        for cand, digest in self.hasher.hashed_candidates(
            text, shown, deadline_s=listing_s, line_starts=scan.line_starts, field_type=only
        ):
            listed[cand.line].append((cand, digest.hex()))
        text_lines = LineReader(text, scan.line_starts)
        findings: list[Finding] = []
        for (tenant_id, record_key), (accepted, first_type, first_line) in chosen.items():
            matched = per_record[(tenant_id, record_key)]
            wanted = hashes[(tenant_id, record_key)][first_type]
            raw = next(
                (c.raw for c, h in listed[first_line] if c.field_type == first_type and h in wanted), None
            )
            with_password = any(_COMBO.match(text_lines.line(n)) for n in matched.get("email", ()))
            findings.append(
                Finding(
                    tenant_id=tenant_id,
                    tenant=self.snapshot.tenants.get(tenant_id, str(tenant_id)),
                    kind="record",
                    record_key=record_key,
                    fields=tuple(sorted(accepted)),
                    line=min(min(matched[f]) for f in accepted),
                    severity=record_severity(accepted, with_password=with_password),
                    masked=mask(first_type, raw) if raw is not None else None,
                )
            )
        findings.sort(key=lambda f: (f.tenant, f.line, f.record_key or ""))
        return findings

    def _domains(self, candidates: Iterable[Candidate], text: str) -> list[Finding]:
        if not self.snapshot.domains:
            return []
        seen: dict[tuple[int, int], Finding] = {}
        watches = [
            (tenant_id, domain, "." + domain, watch_id)
            for tenant_id, domain, watch_id in self.snapshot.domains
        ]
        # once every watch has its first address, no later candidate can add a finding
        every = len({(tenant_id, watch_id) for tenant_id, _, _, watch_id in watches})
        for cand in candidates:
            if cand.field_type != "email":
                continue
            host = cand.canonical.rpartition("@")[2]
            for tenant_id, domain, dotted, watch_id in watches:
                if (host == domain or host.endswith(dotted)) and (tenant_id, watch_id) not in seen:
                    seen[(tenant_id, watch_id)] = Finding(
                        tenant_id=tenant_id,
                        tenant=self.snapshot.tenants.get(tenant_id, str(tenant_id)),
                        kind="domain",
                        watch=domain,
                        watch_id=watch_id,
                        line=cand.line,
                        severity="low",
                        masked=mask("email", cand.raw),
                    )
            if len(seen) == every:
                break
        return sorted(seen.values(), key=lambda f: (f.tenant, f.line))

    def _lookalikes(self, text: str, deadline: Deadline, lowered: str | None = None) -> list[Finding]:
        """Look-alikes of watched domains named in the posting (one Aho-Corasick pass over the text)."""
        matcher = self.snapshot.lookalikes
        if matcher is None:
            return []
        if deadline.expired():  # one linear pass: like the watched domains, it gets a floor
            deadline = Deadline.after(LISTING_FLOOR_S)
        return [
            Finding(
                tenant_id=hit.tenant_id,
                tenant=self._name(hit.tenant_id),
                kind="lookalike",
                watch=hit.variant,
                watch_id=hit.watch_id,
                line=hit.line,
                # addresses on a look-alike are a phishing kit's harvest; a bare mention is a warning
                severity="high" if hit.email else "medium",
                masked=mask("email", hit.email) if hit.email else None,
                technique=hit.technique,
            )
            for hit in matcher.find(text, deadline, lowered=lowered or None)
        ]

    def _name(self, tenant_id: int) -> str:
        return self.snapshot.tenants.get(tenant_id, str(tenant_id))

    def _watch_finding(
        self, kind: str, tenant_id: int, watch: str, watch_id: int, line: int, masked: str | None = None
    ) -> Finding:
        """A finding of a tenant's own watch (keyword, regex, YARA rule): medium, whatever matched."""
        return Finding(
            tenant_id=tenant_id,
            tenant=self._name(tenant_id),
            kind=kind,
            watch=watch,
            watch_id=watch_id,
            line=line,
            severity="medium",
            masked=masked,
        )

    def _watches(
        self,
        text: str,
        deadline: Deadline,
        encoded: bytes | None = None,
        matched: list[BlockMatch] | None = None,
        lowered: str = "",
    ) -> list[Finding]:
        """Keyword, regex, YARA and document watches: each its own kind, independent of records.

        ``matched``: the blocks of `encoded` where the regex watches' Set matched (a shared pass).
        ``lowered``: ``text.lower()`` when the caller made it ("" otherwise): an ASCII text's fold."""
        out: list[Finding] = []
        # the document watches fold the whole text: the keyword watches then read the same folded text
        folded = None
        if self.documents is not None and not deadline.expired():
            if lowered and len(text) <= FOLD_CHARS and text.isascii():
                folded = lowered  # fold(text) of an ASCII text is text.lower()
            else:
                folded = fold(text[:FOLD_CHARS])
        if self.keywords is not None:
            # `folded` is fold(text[:FOLD_CHARS]), and FOLD_CHARS is the keyword stage's limit too
            shared = folded is not None and FOLD_CHARS == KEYWORD_CHARS
            for k in self.keywords.find(text, deadline, folded=folded, folded_here=shared):
                out.append(self._watch_finding("keyword", k.tenant_id, k.keyword, k.watch_id, k.line))
        if self.regexes is not None:
            for r in self.regexes.find(text, deadline, encoded=encoded, matched=matched):
                out.append(
                    self._watch_finding(
                        "regex", r.tenant_id, r.pattern, r.watch_id, r.line, masked=mask("text", r.matched)
                    )
                )
        if self.snapshot.yara_rules is not None and not deadline.expired():
            for y in self.snapshot.yara_rules.find(text, deadline):
                out.append(self._watch_finding("yara", y.tenant_id, y.rule, y.watch_id, y.line))
        if self.documents is not None and not deadline.expired():
            for d in self.documents.find(text, key=self.key, folded=folded):
                out.append(
                    Finding(
                        tenant_id=d.tenant_id,
                        tenant=self._name(d.tenant_id),
                        kind="document",
                        watch=d.name,
                        watch_id=d.watch_id,
                        line=d.line,
                        overlap=d.overlap,
                        severity="critical" if d.overlap >= 0.5 else "high",
                    )
                )
        return out

    def _secret_owners(self, lowered: str, first: dict[str, int] | None = None) -> set[int]:
        """The tenants whose watched domains the posting names (`first`: the domains' first offsets in
        `lowered` when the domain candidates looked already)."""
        first = first or {}
        return {
            tid
            for tid, domain, _ in self.snapshot.domains
            if (first[domain] >= 0 if domain in first else domain in lowered)
        }

    def _secrets(
        self,
        text: str,
        deadline: Deadline,
        lowered: str | None = None,
        encoded: bytes | None = None,
        first: dict[str, int] | None = None,
        matched: list[BlockMatch] | None = None,
    ) -> list[Finding]:
        """Built-in secret detectors; a secret is reported to the tenants whose domains the posting names.

        ``first``: the domains' first offsets in `lowered` when the domain candidates looked already;
        ``matched``: the blocks of `encoded` where the detectors' patterns matched (a shared pass)."""
        if not self.snapshot.domains:
            return []
        lowered = lower_text(text) if lowered is None else lowered
        owners = self._secret_owners(lowered, first)
        if not owners:
            return []
        out: list[Finding] = []
        for hit in find_secrets(text, deadline, encoded=encoded, matched=matched):
            for tenant_id in sorted(owners):
                out.append(
                    Finding(
                        tenant_id=tenant_id,
                        tenant=self._name(tenant_id),
                        kind="secret",
                        watch=hit.detector,
                        line=hit.line,
                        severity="high",
                        masked=mask("api_key", hit.matched),
                    )
                )
        return out


# An at sign, then letters, digits, dots and hyphens with at least one non-ASCII character among them.
# The classes are written as "not these ASCII characters": the same characters as
# [A-Za-z0-9._\-\u0080-\U0010ffff] and [\u0080-\U0010ffff] (a test checks every code point), compiled
# several times faster (a range up to U+10FFFF costs re.compile about 15 ms, at every start-up).
_HOST_CHAR = "[^\\x00-\\x2c/:-@\\[-\\^`{-\\x7f]"
_NON_ASCII_CHAR = "[^\\x00-\\x7f]"
_UNICODE_HOST = re.compile(f"[@\uff20\ufe6b]{_HOST_CHAR}*{_NON_ASCII_CHAR}")


def _unicode_host_lines(text: str, deadline: Deadline) -> Iterator[int]:
    """An offset on each line that holds an ASCII '@', a non-ASCII character, and an address whose
    domain may be written with non-ASCII characters (full-width, Unicode letters): only folding makes
    such a domain a watched one.

    An address whose domain is written in ASCII names the domain literally, so its line is already among
    those naming a watched domain; the other lines with an '@' (a Telegram handle in a Chinese ad, a CSV
    row with a Chinese name) cannot add a finding and are not listed. Kept, conservatively: a line with a
    backslash (JSON escapes can write any character), and an at sign followed, before the first ASCII
    character that no host holds, by a non-ASCII character. Whole-text C searches: the cost follows the
    lines found, not the lines with an '@'; a text of millions of such lines stops at the `deadline`."""

    def line_at(pos: int) -> tuple[int, int]:
        end = text.find("\n", pos)
        return text.rfind("\n", 0, pos) + 1, len(text) if end < 0 else end

    for search in (_UNICODE_HOST.search, _BACKSLASH.search):
        match = search(text)
        while match is not None:
            start, end = line_at(match.start())
            line = text[start:end]
            if "@" in line and not line.isascii():
                yield start
            match = search(text, end) if not deadline.expired() else None


_BACKSLASH = re.compile(r"\\")
# The same searches, each match running on to the end of its line: one match per line found; one
# pattern per at sign, as a literal first character is searched much faster than a class of three.
_HOST_REST = f"{_HOST_CHAR}*{_NON_ASCII_CHAR}[^\\n]*"
_LINE_SEARCHES = (
    *(re.compile(re.escape(at) + _HOST_REST) for at in "@\uff20\ufe6b"),
    re.compile(r"\\[^\n]*"),
)
#: Each search's first character: a text without it is not searched (`in` is a fast C search).
_LINE_SEARCH_FIRST = ("@", "\uff20", "\ufe6b", "\\")


def _unicode_host_line_numbers(text: str, deadline: Deadline) -> list[int]:
    """The 1-based numbers of the lines `_unicode_host_lines` yields, sorted, without repeats: in one
    native pass over the text (one read of each character, no search per '@' of a dump's addresses),
    else through `_unicode_host_line_numbers_py`."""
    if native_text is not None and native_switched_on():
        numbers: list[int] = native_text.unicode_host_lines(text)
        return numbers
    return _unicode_host_line_numbers_py(text, deadline)


def _unicode_host_line_numbers_py(text: str, deadline: Deadline) -> list[int]:
    """`_unicode_host_line_numbers` in Python: one C search per line found (none per line skipped), its
    number counted on from the last one; it stops at the `deadline`."""
    numbers: set[int] = set()
    for first, pattern in zip(_LINE_SEARCH_FIRST, _LINE_SEARCHES, strict=True):
        if first not in text:
            continue
        number, counted = 1, 0
        for count, match in enumerate(pattern.finditer(text), 1):
            start, end = text.rfind("\n", 0, match.start()) + 1, match.end()
            if text.find("@", start, end) >= 0 and not text[start:end].isascii():
                number += text.count("\n", counted, start)
                counted = start
                numbers.add(number)
            if count % 256 == 0 and deadline.expired():
                break
    return sorted(numbers)


def _on_domain(cand: Candidate, domain: str) -> bool:
    """An address on `domain` or one of its subdomains (as `_domains` decides)."""
    host = cand.canonical.rpartition("@")[2]
    return host == domain or host.endswith("." + domain)


def _needle_lines(lowered: str, needle: str, first: int | None = None) -> Iterator[int]:
    """The lines naming `needle`, in order, one look per line (the next search starts at its end);
    `first`: ``lowered.find(needle)`` when known. Each line's number is counted on from the last one
    (``lower()`` keeps every "\n": the numbers are the text's), so the cost follows the text up to the
    last line read, never the whole text."""
    pos = find_text(lowered, needle) if first is None else first
    number, counted = 1, 0
    while pos >= 0:
        number += lowered.count("\n", counted, pos)
        counted = pos
        yield number
        end = lowered.find("\n", pos)
        if end < 0:
            return
        pos = find_text(lowered, needle, end)


def _distinct(numbers: Iterator[int]) -> Iterator[int]:
    """Sorted numbers without repeats."""
    last = None
    for n in numbers:
        if n != last:
            yield n
            last = n


@functools.lru_cache(maxsize=4096)
def _sorted_needles(domain: str) -> tuple[str, ...]:
    """`_domain_needles` of one domain, sorted: worked out once, not for every posting."""
    return tuple(sorted(_domain_needles([domain])))


def _domain_needles(domains: Iterable[str]) -> set[str]:
    """Each watched domain as written and in its other IDNA form (punycode <-> Unicode)."""
    out: set[str] = set()
    for domain in domains:
        out.add(domain)
        try:
            other = (
                domain.encode("idna").decode("ascii")
                if not domain.isascii()
                else domain.encode().decode("idna")
            )
        except (UnicodeError, ValueError):
            continue
        out.add(other.lower())
    return {d for d in out if d}


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`np.union1d(a, b)` (sorted, each value once) without `np.unique`, whose first call imports
    numpy.ma (~10 ms of a fresh `scan`'s first posting, for a masked-array check)."""
    both = np.sort(np.concatenate((a, b)))
    return both[np.concatenate(([True], both[1:] != both[:-1]))]


#: Up to this many hit rows, `_hit_lines` groups them in Python (numpy's per-call costs dominate).
_FEW_ROWS = 256


def _few_hit_lines(digests: bytes, rows: np.ndarray) -> dict[str, np.ndarray]:
    """`Detector._hit_lines` of a few (digest index, line) rows: the same groups, in the same order,
    of the same arrays (each digest's lines sorted; a digest standing twice merges as `np.union1d`, by `_union`)."""
    grouped: dict[int, list[int]] = {}
    for index, line in sorted(rows.tolist()):
        grouped.setdefault(index, []).append(line)
    out: dict[str, np.ndarray] = {}
    for index, lines in grouped.items():
        digest = digests[index * DIGEST_BYTES : (index + 1) * DIGEST_BYTES].hex()
        found = np.array(lines, dtype=rows.dtype)
        out[digest] = _union(out[digest], found) if digest in out else found
    return out


def _accepted_fields(matched: dict[str, set[int]]) -> set[str]:
    """A record is found by one identifying field, or two corroborating fields on one line."""
    identifying = {f for f in matched if f in IDENTIFYING}
    if identifying:
        return set(matched)
    lines: dict[int, set[str]] = defaultdict(set)
    for field_type, found_on in matched.items():
        if field_type in CORROBORATING:
            for line in found_on:
                lines[line].add(field_type)
    together = set().union(*(types for types in lines.values() if len(types) >= 2)) if lines else set()
    return together
