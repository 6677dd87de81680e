"""YARA watches: a tenant's own rules run on every posting.

Why this shape: rules are compiled when they are added (a rule that does not compile is refused with the
compiler's message), stored as their source, and compiled again once per watch snapshot into one rule
set in which each watch is its own namespace (global rules and rule names stay within one tenant's
file). Each posting is matched once, with a time limit taken from the posting's deadline; includes are
refused (a rule must not read the server's files) and the console module prints nowhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yara

from core.errors import BadInput
from pipelines.detection.lines import Deadline, LineIndex

__all__ = ["MAX_RULES_BYTES", "YaraHit", "YaraMatcher", "YaraRules", "read_rules"]

#: The largest rules file accepted.
MAX_RULES_BYTES = 1_000_000


@dataclass(frozen=True)
class YaraRules:
    """A validated rules file: its source, digest and public rule names."""

    source: str
    digest: str
    names: tuple[str, ...]


def _one_line(message: str) -> str:
    return " ".join(message.split())


def compile_source(source: str) -> yara.Rules:
    """Compile rules without includes; a compiler error is bad input, said in one line."""
    try:
        return yara.compile(source=source, includes=False)
    except yara.SyntaxError as exc:
        raise BadInput(_one_line(f"YARA rules do not compile: {exc}")) from None
    except yara.Error as exc:
        raise BadInput(_one_line(f"YARA rules refused: {exc}")) from None


def read_rules(path: Path | str) -> YaraRules:
    """Read and compile a rules file (``watch add --yara``)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_RULES_BYTES + 1)
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a rules file") from None
    except OSError as exc:
        raise BadInput(_one_line(f"{path}: cannot read: {exc.strerror or exc}")) from None
    if len(raw) > MAX_RULES_BYTES:
        raise BadInput(f"{path}: larger than {MAX_RULES_BYTES // 1_000_000} MB")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    if "\x00" in source:
        raise BadInput(f"{path}: holds NUL bytes, not YARA rules text")
    try:
        rules = compile_source(source)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    names = tuple(rule.identifier for rule in rules if not rule.is_private)
    if not names:
        raise BadInput(f"{path}: no public YARA rule in the file")
    return YaraRules(source, hashlib.sha256(source.encode("utf-8")).hexdigest(), names)


@dataclass(frozen=True)
class YaraHit:
    tenant_id: int
    watch_id: int
    rule: str
    line: int  # the line of the rule's first string match (1 for a rule without strings)


class YaraMatcher:
    """Every tenant's YARA watches as one compiled rule set (a namespace per watch)."""

    def __init__(self, watches: Sequence[tuple[int, int, str]]) -> None:
        """``watches``: (tenant_id, watch_id, rules source)."""
        self.owners: dict[str, tuple[int, int]] = {}
        sources: dict[str, str] = {}
        for tenant_id, watch_id, source in watches:
            namespace = f"w{watch_id}"
            sources[namespace] = source
            self.owners[namespace] = (tenant_id, watch_id)
        self.rules: list[yara.Rules] = []
        if not sources:
            return
        try:
            self.rules = [yara.compile(sources=sources, includes=False)]
        except yara.Error:
            # one stored file no longer compiles (a YARA upgrade): the others still run
            for namespace, source in sources.items():
                try:
                    self.rules.append(yara.compile(sources={namespace: source}, includes=False))
                except yara.Error:
                    continue

    def find(self, text: str, deadline: Deadline) -> list[YaraHit]:
        """The rules matching the posting; a time-out leaves the deadline exceeded (the result is partial)."""
        if not self.rules:
            return []
        data = text.encode("utf-8", "surrogatepass")
        index: LineIndex[bytes] | None = None
        hits: list[YaraHit] = []
        for rules in self.rules:
            seconds = int(deadline.remaining())
            if seconds < 1:
                deadline.exceeded = True
                break
            try:
                matches = rules.match(data=data, timeout=seconds, console_callback=_silent)
            except yara.TimeoutError:
                deadline.exceeded = True
                continue
            except yara.Error:
                continue  # e.g. too many matches of one string: that rule set says nothing here
            for match in matches:
                owner = self.owners.get(match.namespace)
                if owner is None:
                    continue
                offsets = [inst.offset for s in match.strings for inst in s.instances]
                line = 1
                if offsets:
                    if index is None:
                        index = LineIndex(data)
                    line = index.line_of(min(offsets))
                hits.append(YaraHit(owner[0], owner[1], match.rule, line))
        return sorted(hits, key=lambda h: (h.tenant_id, h.line, h.rule))


def _silent(message: str) -> None:
    """The console module's output goes nowhere (stdout carries ``scan --json``)."""
    return None
