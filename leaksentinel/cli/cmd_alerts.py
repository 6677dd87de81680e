"""``subscribe`` and ``alerts list/show/ack/resolve/false-positive/reopen/assign/note/export/evidence``."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from leaksentinel.actions.alerts import (
    REASON_REQUIRED,
    add_note,
    alert_detail,
    assign_alert,
    list_alerts,
    triage_alert,
)
from leaksentinel.actions.deliveries import list_deliveries, retry_deliveries
from leaksentinel.actions.subscriptions import add_subscription, remove_subscription
from leaksentinel.actions.tenants import resolve_tenant
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_list, emit_object, err

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]
REASON = Annotated[
    str | None,
    typer.Option("--reason", help="Why (kept on the alert's timeline; needed to resolve or dismiss)."),
]


def cli_actor() -> str:
    """Who acts from the command line, for the alert's timeline: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:128]
    except Exception:  # no login name (a container without a passwd entry)
        return "cli"


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _when(value: str | None) -> str:
    """An ISO time as people read it in a terminal: ``2026-12-03 08:13 UTC``."""
    from datetime import UTC, datetime

    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def _show_human(story: dict[str, Any]) -> str:
    """``alerts show`` for a person: what and where, why so severe, records, sightings, steps, history."""
    lines = [
        f"alert {story['id']} · {story['severity']} · {story['status'].replace('_', ' ')}"
        + (f" · assigned to {story['assignee']}" if story.get("assignee") else ""),
        story["title"],
        f"where: {story.get('url') or ''}",
        f"why {story['severity_reason']}",
    ]
    if story.get("status_reason"):
        lines.append(f"reason: {story['status_reason']}")
    if story["leaked_records"]:
        lines.append("records:")
        for r in story["leaked_records"][:50]:
            seen = "new" if r["new"] else f"seen before in alert {r['first_seen_alert']}"
            pw = ", with password" if r["with_password"] else ""
            lines.append(f"  {r['record_key']}  {r['masked'] or ''}  [{', '.join(r['fields'])}]  {seen}{pw}")
        if len(story["leaked_records"]) > 50:
            lines.append(f"  ... {len(story['leaked_records']) - 50} more (--json for all)")
    lines.append("sightings:")
    lines += [f"  {_when(s['at'])}  {s['source']}  {s['url']}" for s in story["sightings_timeline"]]
    lines.append("next steps:")
    lines += [f"  - {s['step']}" for s in story["next_steps"]]
    if story["timeline"]:
        lines.append("history:")
        for e in story["timeline"]:
            change = f" {e['from'] or '-'} -> {e['to'] or '-'}" if e["action"] != "note" else ""
            text = f": {e['text']}" if e.get("text") else ""
            lines.append(f"  {_when(e['at'])}  {e['actor']}  {e['action']}{change}{text}")
    lines.append(f"actions: {', '.join(story['actions']) or 'none'}")
    # Crawled URLs and titles are hostile: no escape sequence reaches the terminal.
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", "\n".join(lines))


def register(app: typer.Typer) -> None:
    @app.command("subscribe")
    def _subscribe(
        tenant: Annotated[str, typer.Option("--tenant")],
        webhook: Annotated[
            str | None, typer.Option("--webhook", help="http(s) URL receiving signed JSON events.")
        ] = None,
        secret: Annotated[
            str | None, typer.Option("--secret", help="Signing secret (generated when omitted).")
        ] = None,
        email: Annotated[str | None, typer.Option("--email")] = None,
        min_severity: Annotated[str, typer.Option("--min-severity")] = "low",
        slack: Annotated[
            str | None, typer.Option("--slack", help="Slack-compatible incoming-webhook URL.")
        ] = None,
        kinds: Annotated[
            str | None, typer.Option("--kinds", help="Only these finding kinds, e.g. record,secret.")
        ] = None,
        digest: Annotated[
            str | None, typer.Option("--digest", help="hourly or daily summaries instead.")
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Deliver a tenant's alerts to a webhook, an email address or a Slack-compatible chat."""
        out = add_subscription(
            state.db,
            state.settings,
            resolve_tenant(state.db, tenant).id,
            webhook=webhook,
            secret=secret,
            email=email,
            min_severity=min_severity,
            slack=slack,
            kinds=[k.strip() for k in kinds.split(",") if k.strip()] if kinds else None,
            digest=digest,
        )
        emit_object(out, as_json)

    @app.command("unsubscribe")
    def _unsubscribe(
        subscription_id: Annotated[str, typer.Argument(help="Subscription id (see the `subscribe` output).")],
        tenant: Annotated[str, typer.Option("--tenant", help="Tenant name or id.")],
        as_json: JSON = False,
    ) -> None:
        """Stop delivering a tenant's alerts to one target (recorded in the audit log)."""
        out = remove_subscription(state.db, resolve_tenant(state.db, tenant).id, subscription_id)
        emit_object(out, as_json, human=f"subscription {out['id']} of {out['tenant']} removed")

    alerts = typer.Typer(help="Alerts: one per company per leak.", no_args_is_help=True)
    app.add_typer(alerts, name="alerts")

    @alerts.command("list")
    def _list(
        tenant: Annotated[str | None, typer.Option("--tenant")] = None,
        status: Annotated[
            str | None, typer.Option("--status", help="new, acked, resolved, false_positive")
        ] = None,
        kind: Annotated[
            str | None,
            typer.Option("--kind", help="Alerts with a finding of this kind (record, secret ...)."),
        ] = None,
        source: Annotated[
            str | None, typer.Option("--source", help="Source of the leak's first posting.")
        ] = None,
        since: Annotated[
            str | None, typer.Option("--since", help="First seen on or after (YYYY-MM-DD).")
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="First seen on or before (YYYY-MM-DD).")
        ] = None,
        assignee: Annotated[str | None, typer.Option("--assignee")] = None,
        as_json: JSON = False,
    ) -> None:
        """List alerts."""
        emit_list(
            list_alerts(
                state.db,
                resolve_tenant(state.db, tenant).id if tenant else None,
                status,
                kind=kind,
                source=source,
                since=since,
                until=until,
                assignee=assignee,
            ),
            as_json,
            ["id", "tenant", "severity", "status", "kinds", "records", "new_records", "source", "url"],
            title="alerts",
        )

    @alerts.command("show")
    def _show(alert_id: str, as_json: JSON = False) -> None:
        """One alert: what leaked and where, why so severe, each record, sightings, next steps, history."""
        story = alert_detail(state.db, alert_id)
        emit_object(story, as_json, human=_show_human(story))

    def _status_command(command: str, action: str, doc: str) -> None:
        def handler(alert_id: str, reason: REASON = None, as_json: JSON = False) -> None:
            # The contract's forms (`alerts resolve ID`) keep working without --reason; the API and the
            # console require one. The timeline then says no reason was given.
            out = triage_alert(
                state.db, alert_id, action, reason=reason, actor=cli_actor(), require_reason=False
            )
            if action in REASON_REQUIRED and not out.get("status_reason"):
                err(
                    f"leaksentinel: note: alert {out['id']} is {out['status'].replace('_', ' ')} without a "
                    "reason on its timeline; say why with --reason TEXT (the console and API require it)"
                )
            emit_object(out, as_json, human=f"alert {alert_id}: {out['status']}")

        handler.__doc__ = doc
        alerts.command(command)(handler)

    @alerts.command("assign")
    def _assign(
        alert_id: str,
        assignee: Annotated[str | None, typer.Argument(help="A name or email.")] = None,
        clear: Annotated[bool, typer.Option("--clear", help="Unassign the alert.")] = False,
        as_json: JSON = False,
    ) -> None:
        """Set (or --clear) who owns an alert; recorded on its timeline."""
        from core.errors import BadInput

        if clear == bool(assignee):
            raise BadInput("give an assignee or --clear (not both)")
        out = assign_alert(state.db, alert_id, None if clear else assignee, actor=cli_actor())
        emit_object(
            out,
            as_json,
            human=f"alert {alert_id}: "
            + (f"assigned to {out['assignee']}" if out["assignee"] else "unassigned"),
        )

    @alerts.command("note")
    def _note(
        alert_id: str,
        text: Annotated[str, typer.Argument(help="The note (what was checked, who was told).")],
        as_json: JSON = False,
    ) -> None:
        """Add a note to an alert's timeline."""
        out = add_note(state.db, alert_id, text, actor=cli_actor())
        emit_object(out, as_json, human=f"alert {alert_id}: note added")

    @alerts.command("export")
    def _export(
        alert_id: str,
        fmt: Annotated[
            str, typer.Option("--format", help="stix (STIX 2.1 bundle) or misp (MISP event).")
        ] = "stix",
    ) -> None:
        """Export an alert as a STIX 2.1 bundle or a MISP event (masked values only)."""
        import json
        import sys

        from leaksentinel.actions.alerts import export_alert

        sys.stdout.write(
            json.dumps(export_alert(state.db, state.settings, alert_id, fmt), ensure_ascii=False) + "\n"
        )

    @alerts.command("evidence")
    def _evidence(
        alert_id: str,
        output: Annotated[
            str | None,
            typer.Option(
                "-o", "--output", help="Zip file to write (default: alert-ID-evidence.zip; - for stdout)."
            ),
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Write the alert's signed evidence package (raw bytes, fetch metadata, WARC, signed manifest)."""
        import hashlib
        import sys

        from leaksentinel.cli.cmd_evidence import write_private
        from leaksentinel.evidence import build_evidence

        data = build_evidence(state.db, state.settings, alert_id)
        digest = hashlib.sha256(data).hexdigest()
        if output == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return
        path = write_private(output or f"alert-{alert_id}-evidence.zip", data)
        emit_object(
            {"alert": int(alert_id), "file": str(path), "bytes": len(data), "sha256": digest},
            as_json,
            human=f"evidence of alert {alert_id} written to {path} ({len(data)} bytes, sha256 {digest})",
        )

    _status_command("ack", "ack", "Acknowledge a new alert.")
    _status_command("resolve", "resolve", "Mark an alert resolved (say why with --reason).")
    _status_command(
        "false-positive", "false-positive", "Mark an alert a false positive (say why with --reason)."
    )
    _status_command("reopen", "reopen", "Reopen a resolved, dismissed or acknowledged alert.")

    deliveries = typer.Typer(help="Alert deliveries and the dead-letter list.", no_args_is_help=True)
    app.add_typer(deliveries, name="deliveries")

    @deliveries.command("list")
    def _deliveries_list(
        status: Annotated[str | None, typer.Option("--status", help="pending, queued, sent, dead")] = None,
        as_json: JSON = False,
    ) -> None:
        """List deliveries (`--status dead`: the dead-letter list)."""
        emit_list(
            list_deliveries(state.db, status),
            as_json,
            ["id", "alert", "tenant", "channel", "target", "status", "attempts", "last_error"],
            title="deliveries",
        )

    @deliveries.command("retry")
    def _deliveries_retry(
        ids: Annotated[list[str] | None, typer.Argument(help="Delivery ids.")] = None,
        all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
        as_json: JSON = False,
    ) -> None:
        """Redeliver dead deliveries (a running service picks them up at once)."""
        out = retry_deliveries(state.db, ids or [], all_dead=all_dead)
        emit_object(
            {"retried": len(out), "deliveries": [d["id"] for d in out]},
            as_json,
            human=f"{len(out)} deliveries back in the outbox",
        )

    @app.command("audit")
    def _audit(
        limit: Annotated[int, typer.Option("--limit")] = 50,
        as_json: JSON = False,
    ) -> None:
        """The audit log: every change, with who made it."""
        from leaksentinel.actions.audit import list_audit

        emit_list(
            list_audit(state.db, limit=limit),
            as_json,
            ["at", "actor", "action", "object_type", "object_id"],
            title="audit log",
        )
