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
