"""The running gateway against its own OpenAPI document: whatever
schemathesis generates, no response is a 5xx and every response matches
the documented status codes, content types, headers and schemas."""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ADMIN_TOKEN, ETL_TOKEN

# The stream endpoint answers 200 with an endless body; its errors are
# covered by the gateway's handler tests.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/logs/stream")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_responses_match_the_document(case):
    token = ETL_TOKEN if case.path == "/api/logs/publish" else ADMIN_TOKEN
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_unauthenticated_requests_match_the_document(case):
    # Without a token, protected operations must answer a documented 401.
    response = case.call_and_validate(checks=CHECKS)
    same_method = case.method.upper() == case.operation.method.upper()
    if same_method and case.path in ("/api/logs/publish", "/admin/logs/stats", "/metrics"):
        assert response.status_code in (401, 415), response.text


def test_document_is_served_and_describes_every_endpoint(gateway_url):
    document = requests.get(f"{gateway_url}/openapi.json", timeout=5).json()
    assert set(document["paths"]) == {
        "/api/logs/stream", "/api/logs/stream/{connectionId}/channels", "/api/logs/publish",
        "/health", "/admin/logs/stats", "/metrics",
    }
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
