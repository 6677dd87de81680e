"""``tenant add`` and ``tenant list``."""

from __future__ import annotations

from typing import Annotated

import typer

from leaksentinel.actions.tenants import add_tenant, list_tenants
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_list, emit_object

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]


def register(app: typer.Typer) -> None:
    tenant = typer.Typer(help="Companies that register data and receive alerts.", no_args_is_help=True)
    app.add_typer(tenant, name="tenant")

    @tenant.command("add")
    def _add(
        name: str,
        domain: Annotated[
            list[str] | None, typer.Option("--domain", help="A domain of the company (also watched).")
        ] = None,
        region: Annotated[
            list[str] | None,
            typer.Option("--region", help="Country whose bare national phone numbers are read."),
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Add a tenant; prints its API key once."""
        out = add_tenant(state.db, name, domain or [], region or [])
        emit_object(
            out,
            as_json,
            human=f"tenant {out['name']} (id {out['id']}) added\napi key (shown once): {out['api_key']}",
        )

    @tenant.command("list")
    def _list(as_json: JSON = False) -> None:
        """List tenants."""
        emit_list(list_tenants(state.db), as_json, ["id", "name", "domains", "regions"], title="tenants")

    key = typer.Typer(help="API keys for operators, analysts and tenant users.", no_args_is_help=True)
    app.add_typer(key, name="key")

    @key.command("add")
    def _key_add(
        role: Annotated[str, typer.Option("--role", help="operator, analyst, tenant_admin, tenant_viewer")],
        tenant: Annotated[str | None, typer.Option("--tenant", help="For tenant roles.")] = None,
        as_json: JSON = False,
    ) -> None:
        """Create an API key (shown once)."""
        from leaksentinel.actions.keys import add_key
        from leaksentinel.actions.tenants import resolve_tenant

        out = add_key(state.db, role, resolve_tenant(state.db, tenant).id if tenant is not None else None)
        emit_object(out, as_json, human=f"{out['role']} key {out['id']} (shown once): {out['api_key']}")

    @key.command("list")
    def _key_list(as_json: JSON = False) -> None:
        """List API keys (their prefixes only)."""
        from leaksentinel.actions.keys import list_keys

        emit_list(
            list_keys(state.db),
            as_json,
            ["id", "role", "tenant", "prefix", "revoked", "created_at"],
            title="API keys",
        )

    @key.command("revoke")
    def _key_revoke(key_id: str, as_json: JSON = False) -> None:
        """Revoke an API key."""
        from leaksentinel.actions.keys import revoke_key

        emit_object(revoke_key(state.db, key_id), as_json, human=f"key {key_id} revoked")
