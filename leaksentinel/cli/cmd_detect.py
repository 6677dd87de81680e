"""``hash``, ``watch add/list/remove`` and ``scan``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import BadInput
from core.hashing import load_or_create_key
from leaksentinel.actions.tenants import check_region, resolve_tenant
from leaksentinel.actions.watches import (
    add_document_watch,
    add_domain_watch,
    add_keyword_watch,
    add_records,
    add_regex_watch,
    add_yara_watch,
    hunt_watch,
    list_watches,
    remove_watch,
)
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_list, emit_object, err
from leaksentinel.company_hash import (
    MAX_BUFFERED_CHARS,
    Refusals,
    bounded_lines,
    hash_csv,
    hash_values,
    open_input,
)
from leaksentinel.scanning import scan_paths
from pipelines.detection.documents import document_fingerprint
from pipelines.normalize import decode_bytes

MAX_DOCUMENT_BYTES = 50_000_000

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]


def _write_lines(objs: object) -> None:
    out = sys.stdout
    for obj in objs:  # type: ignore[attr-defined]
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def _report_refusals(refusals: Refusals) -> None:
    """What ``hash`` did not hash, in one line on stderr (stdout stays clean JSON Lines)."""
    if refusals:
        err(f"leaksentinel hash: {refusals.summary()} (--strict makes this an error)")


def _hash_value_file(
    file: str | None, key: bytes, field_type: str, region: str | None, refusals: Refusals, strict: bool
) -> None:
    """``hash --type T [FILE|-]``; with ``--strict`` every value is checked before anything is printed."""
    origin = "<stdin>" if file in (None, "-") else str(file)
    if file not in (None, "-") and not Path(str(file)).exists():
        raise BadInput(f"no such file: {file}")
    fh = sys.stdin if file in (None, "-") else open_input(str(file))
    try:
        lines: Any = fh
        if strict:
            lines = list(bounded_lines(fh, origin, max_total=MAX_BUFFERED_CHARS))
            for _ in hash_values(lines, key, field_type, region=region, refusals=refusals, origin=origin):
                pass
            if refusals:
                raise BadInput(f"{origin}: {refusals.summary()} (--strict)")
        _write_lines(hash_values(lines, key, field_type, region=region, refusals=refusals, origin=origin))
        _report_refusals(refusals)
    finally:
        if fh is not sys.stdin:
            fh.close()


def _print_findings(findings: Any) -> None:
    """Findings for people: one line each, then the count."""
    count = 0
    for f in findings:
        count += 1
        what = f.get("record_key") or f.get("watch") or ""
        fields = ",".join(f.get("fields", []))
        sys.stdout.write(
            f"{f['posting']}:{f['line']}  {f['severity']:<8} {f['tenant']}  {f['kind']} {what} "
            f"{fields} {f.get('masked') or ''}".rstrip()
            + "\n"
        )
    sys.stdout.write(f"{count} finding(s)\n")


def hunt_summary(state: dict[str, Any] | None) -> str:
    """A YARA retro-hunt's state in words (``watch add --yara``, ``watch list``)."""
    if not state:
        return "not run"
    status = str(state.get("status"))
    if status == "queued":
        return "queued for a worker"
    if status == "running":
        return f"running ({state.get('postings', 0)} postings searched so far)"
    if status in ("busy", "removed"):
        return {"busy": "already running", "removed": "watch removed"}[status]
    text = (
        f"{status}: {state.get('postings', 0)} stored postings searched, {state.get('matches', 0)} matched, "
        f"{state.get('alerts', 0)} new alerts"
    )
    if state.get("limited"):
        text += f" (stopped at the {state['limited']} limit, newest searched first)"
    if state.get("error"):
        text += f"; error: {state['error']}"
    return text


def register(app: typer.Typer) -> None:
    @app.command("hash")
    def _hash(
        file: Annotated[
            str | None, typer.Argument(help="With --type: a file of values, one per line, or - for stdin.")
        ] = None,
        csv_file: Annotated[
            Path | None, typer.Option("--csv", help="CSV whose header names each column's field type.")
        ] = None,
        key_column: Annotated[
            str | None, typer.Option("--key-column", help="Column copied as the opaque record_key.")
        ] = None,
        field_type: Annotated[
            str | None, typer.Option("--type", help="Field type of every value (with FILE or -).")
        ] = None,
        document: Annotated[
            Path | None, typer.Option("--document", help="Fingerprint a confidential document.")
        ] = None,
        region: Annotated[
            str | None, typer.Option("--region", help="Default country for national phone numbers.")
        ] = None,
        strict: Annotated[
            bool,
            typer.Option("--strict", help="Refuse the input (exit 2, no output) if any value is invalid."),
        ] = False,
    ) -> None:
        """Hash your data locally with the deployment's key (nothing is sent anywhere).

        Values that are not valid for their type (a card failing Luhn, a malformed email) cannot match
        and are not hashed: how many, by type and with their first line numbers, is said on stderr. A CSV
        row with no valid value is left out of the output (an empty record would only seem watched).
        ``--strict`` makes any of this an error before anything is printed.
        """
        modes = [m for m in (csv_file, field_type, document) if m is not None]
        if len(modes) != 1:
            raise BadInput("give exactly one of --csv FILE, --type TYPE [FILE|-], --document FILE")
        reg = check_region(region) if region else None
        key = load_or_create_key(state.settings.key_path)
        refusals = Refusals()
        if csv_file is not None:
            stdin = sys.stdin if str(csv_file) == "-" else None
            rows = hash_csv(
                "<stdin>" if stdin else csv_file,
                key,
                key_column=key_column,
                region=reg,
                stream=stdin,
                refusals=refusals,
                strict=strict,
            )
            _write_lines(rows)
            _report_refusals(refusals)
        elif field_type is not None:
            _hash_value_file(file, key, field_type, reg, refusals, strict)
        else:
            assert document is not None
            if not document.is_file():
                raise BadInput(f"no such file: {document}")
            with document.open("rb") as fh:
                raw = fh.read(MAX_DOCUMENT_BYTES + 1)
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise BadInput(f"{document}: larger than {MAX_DOCUMENT_BYTES // 1_000_000} MB")
            text = decode_bytes(raw)
            _write_lines([document_fingerprint(text, name=document.name, key=key)])

    watch = typer.Typer(
        help="What a tenant watches: records, domains (and look-alikes), keywords, regexes, documents, YARA.",
        no_args_is_help=True,
    )
    app.add_typer(watch, name="watch")

    @watch.command("add")
    def _watch_add(
        tenant: Annotated[str, typer.Option("--tenant", help="Tenant name or id.")],
        records: Annotated[
            Path | None, typer.Option("--records", help="JSON Lines from `leaksentinel hash`.")
        ] = None,
        domain: Annotated[
            str | None,
            typer.Option(
                "--domain", help="Addresses on it (kind domain) and its look-alikes (kind lookalike)."
            ),
        ] = None,
        keyword: Annotated[str | None, typer.Option("--keyword")] = None,
        regex: Annotated[str | None, typer.Option("--regex")] = None,
        document: Annotated[Path | None, typer.Option("--document")] = None,
        name: Annotated[str | None, typer.Option("--name", help="Name of a document watch.")] = None,
        yara_file: Annotated[
            Path | None,
            typer.Option(
                "--yara",
                help="YARA rules file, run on every posting and hunted over the stored ones; "
                "findings of kind yara name the rule.",
            ),
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Add a watch item (adding one that exists is not an error).

        A watched domain also watches its look-alikes (typo, homoglyph, IDN, bit-flip, TLD swap): findings
        of kind ``lookalike`` name the variant and its ``technique``. ``--yara`` rules are compiled now (a
        compile error is refused) and give findings of kind ``yara`` naming the rule; a new YARA watch is
        also run over the stored postings (retro-hunt, newest first, bounded): queued for the workers of
        a running ``run`` or fleet, else run here for at most ``yara_retro_inline_seconds``. ``watch list``
        shows how the hunt ended."""
        chosen = [x for x in (records, domain, keyword, regex, document, yara_file) if x is not None]
        if len(chosen) != 1:
            raise BadInput("give exactly one of --records, --domain, --keyword, --regex, --document, --yara")
        tenant_id = resolve_tenant(state.db, tenant).id  # the name or id, resolved once
        if records is not None:
            out = add_records(state.db, tenant_id, records, settings=state.settings)
            human = f"registered {out['records']} records ({out['hashes']} hashes) for {out['tenant']}"
            if out.get("retro", {}).get("findings"):
                human += (
                    f"; already leaked: {out['retro']['findings']} findings in {out['retro']['postings']} "
                    f"stored postings, {out['retro']['alerts']} new alerts"
                )
        elif domain is not None:
            out = add_domain_watch(state.db, tenant_id, domain)
            human = f"watching domain {out['value']} for {out['tenant']} (watch {out['id']})"
        elif keyword is not None:
            out = add_keyword_watch(state.db, tenant_id, keyword)
            human = f"watching keyword {out['value']!r} for {out['tenant']} (watch {out['id']})"
        elif regex is not None:
            out = add_regex_watch(state.db, tenant_id, regex)
            human = f"watching regex {out['value']!r} for {out['tenant']} (watch {out['id']})"
        elif yara_file is not None:
            out = add_yara_watch(state.db, tenant_id, yara_file, settings=state.settings)
            human = (
                f"watching YARA rules {out['name']!r} ({', '.join(out['rules'])}) for {out['tenant']} "
                f"(watch {out['id']}); retro-hunt: {hunt_summary(out.get('retro'))}"
            )
        else:
            assert document is not None
            out = add_document_watch(state.db, tenant_id, document, name or "")
            human = (
                f"watching document {out['name']!r} ({out['fingerprints']} fingerprints) for {out['tenant']}"
            )
        emit_object(out, as_json, human=human)

    @watch.command("list")
    def _watch_list(tenant: Annotated[str, typer.Option("--tenant")], as_json: JSON = False) -> None:
        """List a tenant's watch items (a YARA watch with the state of its retro-hunt)."""
        rows = list_watches(state.db, resolve_tenant(state.db, tenant).id)
        if not as_json:
            rows = [{**r, "retro": hunt_summary(r["retro"]) if "retro" in r else None} for r in rows]
        emit_list(rows, as_json, ["id", "kind", "value", "name", "records", "retro"], title="watch items")

    @watch.command("hunt")
    def _watch_hunt(
        watch_id: str, tenant: Annotated[str, typer.Option("--tenant")], as_json: JSON = False
    ) -> None:
        """Run a YARA watch over the stored postings again (alerts already raised are not raised twice)."""
        out = hunt_watch(state.db, state.settings, resolve_tenant(state.db, tenant).id, watch_id)
        emit_object(out, as_json, human=f"retro-hunt of watch {out['id']}: {hunt_summary(out['retro'])}")

    @watch.command("remove")
    def _watch_remove(
        watch_id: str, tenant: Annotated[str, typer.Option("--tenant")], as_json: JSON = False
    ) -> None:
        """Remove a watch item (and its registered hashes)."""
        emit_object(remove_watch(state.db, resolve_tenant(state.db, tenant).id, watch_id), as_json)

    @app.command("scan")
    def _scan(
        paths: Annotated[list[str], typer.Argument(help="Files; each is one posting.")],
        store: Annotated[
            bool,
            typer.Option("--store", help="Keep each file as a posting of source `local` and raise alerts."),
        ] = False,
        show_stats: Annotated[
            bool,
            typer.Option(
                "--stats",
                help="On stderr: bytes, CPU time, MB/s, and lines handed back to the Python extractor.",
            ),
        ] = False,
        as_json: JSON = False,
    ) -> None:
        """Run the crawl pipeline's detection on local files.

        One finding per (posting, tenant, record or watch), of kind record, domain, lookalike (``watch``:
        the variant, ``technique``: how it was made from the watched domain, e.g. omission, homoglyph,
        idn-homoglyph, bit-flip, tld-swap), keyword, regex, yara (``watch``: the rule name), document or
        secret (``watch``: the rule id, e.g. github_token, aws_access_key_id).
        """
        stats: dict[str, Any] = {}
        findings = scan_paths(state.settings, paths, store=store, stats=stats)
        if as_json:
            _write_lines(findings)
        else:
            _print_findings(findings)
        if show_stats and stats:
            mb = stats["bytes"] / 1e6
            rate = mb / stats["cpu_s"] if stats["cpu_s"] > 0 else float("inf")
            sys.stderr.write(
                f"leaksentinel: scanned {stats['postings']} posting(s), {mb:.2f} MB in {stats['cpu_s']:.2f} CPU-s "
                f"({rate:.1f} MB/s); lines handed to Python: {stats['deferred_lines']} "
                f"(read by extract.py: {stats['python_lines']}); partial scans: {stats['partial']}\n"
            )
