"""Liveness, readiness (database and broker) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from village.api import prom
from village.api.deps import Conn

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    """Always ok while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Database and broker reachable",
            responses={503: {"description": "a dependency is unreachable"}})
def readyz(request: Request) -> JSONResponse:
    """Ok when the database answers and the broker connection is up."""
    checks: dict[str, Any] = {}
    try:
        with request.app.state.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means not ready; the reason is not leaked
        checks["database"] = "unreachable"
    checks["broker"] = "ok" if request.app.state.broker.is_connected() else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(conn: Conn) -> PlainTextResponse:
    """The service's gauges in Prometheus text format, measured from SQL now."""
    return PlainTextResponse(prom.scrape(conn), media_type="text/plain; version=0.0.4")
