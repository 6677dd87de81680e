"""Property-based API tests: schemathesis generates requests from the OpenAPI document; no request may
crash the service (5xx). Driven programmatically (one hypothesis run per operation), which keeps it
independent of schemathesis' pytest plugin."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import open_database
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.api.app import create_app

# `watch add --records` over HTTP takes `leaksentinel hash` output: JSON Lines, valid or not.
_RECORD = st.builds(
    lambda key, h: f'{{"record_key": "{key}", "fields": {{"email": "{h}"}}, "v": 1}}',
    st.text("abc123", min_size=1, max_size=8),
    st.text("0123456789abcdef", min_size=0, max_size=40),
)
schemathesis.openapi.media_type(
    "application/x-ndjson",
    st.one_of(st.lists(_RECORD, max_size=5).map("\n".join), st.text(max_size=200)).map(str.encode),
)


def test_no_generated_request_crashes_the_api() -> None:
    config = load_settings(api_rate_per_s=10_000.0, api_burst=10_000)
    db = open_database(config)
    add_tenant(db, "acme", ["acme.example"], ["CN"])
    key = add_key(db, "operator")["api_key"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(config))
    failures: list[str] = []
    calls: list[int] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers={"Authorization": f"Bearer {key}"})
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                )

        check()
    assert operations >= 15 and len(calls) >= 2 * operations
    assert any(code < 300 for code in calls)  # not everything was rejected at the door
    assert failures == []
