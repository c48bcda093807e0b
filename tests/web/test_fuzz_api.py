"""Property-based requests generated from the OpenAPI document (schemathesis):
no input makes the API answer 5xx, and every JSON answer matches the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from web_helpers import bearer, token_for


@pytest.mark.slow
@pytest.mark.parametrize("role_user", ["admin1", "operator1"])
def test_api_never_fails_on_any_input(app, role_user):
    client = app.test_client()
    headers = bearer(token_for(client, role_user))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for op in operations:
        if op.path == "/api/v1/tokens/{prefix}":
            continue        # revoking tokens would end this test's own session

        @given(case=op.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                response.text[:300])
            if response.headers.get("Content-Type", "").startswith("application/"):
                case.validate_response(response)

        check()
