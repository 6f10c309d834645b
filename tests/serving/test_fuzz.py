"""Fuzz every route of the OpenAPI schema: whatever a client sends, no 5xx."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.serving.conftest import Gateway, make_gateway

pytestmark = pytest.mark.slow

_root = Path(tempfile.mkdtemp(prefix="engram-fuzz-"))
_gateway, _close = make_gateway(_root, quotas={"requests_per_s": 1e6, "burst": 10**6})
_key = _gateway.new_tenant("fuzz")
_gateway.client.post(
    "/v1/signals",
    headers=_key,
    json={
        "signals": [
            {
                "user_id": "u1",
                "source": "chat",
                "role": "user",
                "text": "I live in Berlin",
                "occurred_at": "2024-01-01T00:00:00Z",
            }
        ]
    },
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _gateway.client.app)


@pytest.fixture(scope="module", autouse=True)
def _shutdown() -> Iterator[Gateway]:
    yield _gateway
    _close()
    shutil.rmtree(_root, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    headers = (
        {"Authorization": _gateway.admin["Authorization"]}
        if case.path.startswith(("/admin", "/metrics"))
        else _key
    )
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        assert "error" in response.json(), response.text
