"""The tenant overview: a security team's alerts per week by severity, and what is open now.

Scoped like every tenant page, by the API's PickedTenant dependency: a tenant user sees only its own
tenant's counts (naming another tenant is a 404); an operator or analyst picks one.
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from core.models import SEVERITIES
from leaksentinel.api.deps import PickedTenant
from leaksentinel.console.charts import SEVERITY_COLORS, Series, bar_chart
from leaksentinel.console.pages import ALERT_ROLES, console_of, current, picked_name, render, tenant_names

router = APIRouter(include_in_schema=False)


@router.get("/overview")
def overview_page(request: Request, scope: PickedTenant, weeks: str = "12") -> HTMLResponse:
    who, session = current(request, *ALERT_ROLES)
    from leaksentinel.actions.stats import tenant_weekly_alerts

    db = console_of(request).db
    window = max(4, min(int(weeks), 52)) if weeks.isascii() and weeks.isdigit() and len(weeks) < 6 else 12
    data = None
    chart = None
    if scope is not None:
        data = tenant_weekly_alerts(db, scope.id, window)
        data["all"] = [sum(column) for column in zip(*data["severity"].values(), strict=True)]
        chart = bar_chart(
            [f"week of {w}" for w in data["weeks"]],
            [Series(sev, data["severity"].get(sev, []), SEVERITY_COLORS[sev]) for sev in SEVERITIES],
            title=f"Alerts of {scope.name} per week by severity, last {window} weeks",
            empty="No alerts in these weeks.",
            width=1100,
            height=200,
        )
    return render(
        request,
        "overview.html",
        who=who,
        session=session,
        scope=scope,
        data=data,
        chart=chart,
        weeks=window,
        severities=SEVERITIES,
        tenant=picked_name(who, scope),
        tenants=[] if who.is_tenant else tenant_names(db),
    )
