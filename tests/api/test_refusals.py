"""Domain refusals: one table turns each kind into its status; the CLI says it in one line."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from alerting.operations import AlertDenied, AlertNotFound, SilenceError
from broadcast.model import BroadcastDenied, BroadcastError, NotFound
from devices.registry import DeviceConflict, DeviceInvalid, DeviceNotFound, ImportRefused
from ground.errors import Refused
from village.api import problems
from village.commands.output import refusals

CASES: list[tuple[Refused, int, str | None]] = [
    (AlertNotFound("no alert 3"), 404, None),
    (AlertDenied("outside your scope"), 403, None),
    (SilenceError("a silence may last 30 days at most"), 422, "body"),
    (NotFound("no broadcast x"), 404, None),
    (BroadcastDenied("may not cancel"), 403, None),
    (BroadcastError("unknown speakers"), 422, "body.scope"),  # the route says it is the scope
    (DeviceNotFound("'m-1' is not registered"), 404, None),
    (DeviceConflict("'m-1' is already registered", field="device_id"), 409, "body.device_id"),
    (DeviceInvalid("latitude: out of range", field="latitude"), 422, "body.latitude"),
    (ImportRefused([]), 422, "body"),
]


def _app(refusal: Refused) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/refuse")
    def refuse() -> None:
        with problems.about("scope") if isinstance(refusal, BroadcastError) else nullcontext():
            raise refusal

    return app


@pytest.mark.parametrize("refusal, status, field", CASES, ids=lambda c: type(c).__name__)
def test_the_api_tells_each_refusal_by_its_kind(refusal: Refused, status: int,
                                                field: str | None) -> None:
    response = TestClient(_app(refusal)).get("/refuse")
    assert response.status_code == status
    assert response.headers["content-type"] == problems.PROBLEM_TYPE
    assert response.json()["detail"] == str(refusal) and response.json()["field"] == field


def test_the_cli_tells_a_refusal_in_one_line_with_its_exit_status() -> None:
    app = typer.Typer()

    @app.command()
    def refuse(code: int) -> None:
        with refusals(code):
            raise DeviceConflict("'m-1' is already retired")

    result = CliRunner().invoke(app, ["2"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: 'm-1' is already retired"]
