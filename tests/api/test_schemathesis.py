"""Schemathesis against the OpenAPI document of a live server: no server error, and no
response that breaks its documented schema or media type."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from ground.local import MosquittoServer
from tests.api.conftest import TokenMaker
from village.api.app import create_app
from village.settings import Settings

CHECKS = [schemathesis.checks.not_a_server_error, response_schema_conformance,
          content_type_conformance]
EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def client(settings: Settings, seeded: str, mosquitto: MosquittoServer) -> Iterator[TestClient]:
    """A client of the API on the seeded database, with a broker, once it is ready."""
    app = create_app(settings.model_copy(update={"mqtt_url": mosquitto.url}))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        deadline = time.monotonic() + 10
        while test_client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the API never became ready"
            time.sleep(0.1)
        yield test_client


def test_every_operation_conforms(client: TestClient, auth: TokenMaker) -> None:
    # In-process, through the test client (which keeps the app's lifespan running):
    # schemathesis' own requests transport breaks on the urllib3-future that
    # grafana-client's niquests installs in place of urllib3.
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    admin = auth()
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the API's own schema has an invalid operation: {result}"
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            request = case.as_transport_kwargs(base_url="http://testserver", headers=admin)
            if "data" in request and not isinstance(request["data"], dict):
                request["content"] = request.pop("data")  # raw bodies (CSV, YAML)
            case.validate_response(client.request(**request), checks=CHECKS)

        try:
            exercise()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 20
    assert failures == [], "\n\n".join(failures)
