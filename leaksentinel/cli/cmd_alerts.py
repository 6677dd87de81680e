"""``subscribe`` and ``alerts list/ack/resolve/false-positive/export/evidence``."""

from __future__ import annotations

from typing import Annotated

import typer

from leaksentinel.actions.alerts import list_alerts, set_alert_status
from leaksentinel.actions.deliveries import list_deliveries, retry_deliveries
from leaksentinel.actions.subscriptions import add_subscription, remove_subscription
from leaksentinel.actions.tenants import resolve_tenant
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_list, emit_object

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]


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
        as_json: JSON = False,
    ) -> None:
        """List alerts."""
        emit_list(
            list_alerts(state.db, resolve_tenant(state.db, tenant).id if tenant else None, status),
            as_json,
            ["id", "tenant", "severity", "status", "kinds", "records", "new_records", "source", "url"],
            title="alerts",
        )

    def _status_command(command: str, status: str, doc: str) -> None:
        def handler(alert_id: str, as_json: JSON = False) -> None:
            emit_object(
                set_alert_status(state.db, alert_id, status), as_json, human=f"alert {alert_id}: {status}"
            )

        handler.__doc__ = doc
        alerts.command(command)(handler)

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

    _status_command("ack", "acked", "Acknowledge an alert.")
    _status_command("resolve", "resolved", "Mark an alert resolved.")
    _status_command("false-positive", "false_positive", "Mark an alert a false positive.")

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
