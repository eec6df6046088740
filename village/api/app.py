"""The application factory: wires settings, the database pool, the broker link and routers."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any
from uuid import uuid4

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from ground.mqtt import ClientOptions, build_client, connect_async
from village.api import deps, problems
from village.api.body_limit import BodyLimit
from village.api.routers import alerts, broadcasts, commands, devices, health, phone, telemetry
from village.console import mount as console
from village.settings import Settings, link_secret

DOCS_ASSETS = "/docs-assets"
# Device commands before devices: `/devices/commands/...` is not a device id.
ROUTERS = (health.router, commands.router, devices.router, telemetry.router, alerts.router,
           broadcasts.router, phone.router)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # The pool opens without waiting, so the API starts (and /readyz says why it is not
    # ready) while the database is still down.
    pool = ConnectionPool(settings.database_url, min_size=1, max_size=settings.api.pool_size,
                          timeout=10, open=False, name="api")
    pool.open(wait=False)
    # Unique per app: two APIs with one client id would keep taking the session from
    # each other, and /readyz would flap.
    options = ClientOptions(client_id=f"api-{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:6]}",
                            persistent_session=False)
    broker = build_client(settings.mqtt, options)
    connect_async(broker, settings.mqtt, options)
    broker.loop_start()
    app.state.pool, app.state.broker = pool, broker
    try:
        yield
    finally:
        broker.disconnect()
        broker.loop_stop()
        pool.close()


def _swagger_assets() -> str | None:
    # Swagger UI's files come from the swagger-ui-py package, served by us: no CDN.
    try:
        return str(resources.files("swagger_ui") / "static")
    except ModuleNotFoundError:
        return None


def _docs_missing() -> JSONResponse:
    return problems.problem_response(
        503, "the API docs page needs the swagger-ui-py package; /openapi.json still works")


def _docs_page() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title="Smart Village Telemetry API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:

        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = problems.ProblemDetails.model_json_schema(
            ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs"))
        components["ProblemDetails"] = problem
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    """A ready-to-serve API for these settings (nothing connects until it starts)."""
    app = FastAPI(
        title="Smart Village Telemetry API",
        version="1",
        description="Devices, telemetry, alerts and broadcasts of a county. "
                    "Authenticate with `Authorization: Bearer <token>` (`village tokens create`).",
        lifespan=_lifespan, docs_url=None, redoc_url=None,
        responses=problems.PROBLEM_RESPONSES,
    )
    app.state.settings = settings
    app.state.link_secret = link_secret(settings)  # fails at start, not at the first phone tap
    problems.install(app)
    app.add_exception_handler(phone.Refused, phone.on_refused)
    app.add_middleware(BodyLimit, default=settings.api.max_body_bytes,
                       by_path={devices.IMPORT_PATH: settings.api.max_import_bytes})
    for router in ROUTERS:
        # The phone page refuses any malformed link itself (403), NUL or not.
        checks = [] if router is phone.router else [Depends(deps.plain_input)]
        app.include_router(router, dependencies=checks)
    assets = _swagger_assets()
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    app.add_api_route("/docs", _docs_page if assets else _docs_missing, include_in_schema=False)
    console.install(app, settings.console)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app
