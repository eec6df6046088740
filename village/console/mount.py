"""Puts the console into the API's app: its pages, its static files, its security headers."""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from village.console import audio, web
from village.console.pages import (
    alerts,
    audit,
    broadcasts,
    device_commands,
    device_import,
    devices,
    overview,
    signin,
    users,
)
from village.console.settings import ConsoleSettings

PAGES = (signin.router, users.router, overview.router, alerts.router, broadcasts.router,
         device_import.router, devices.router, device_commands.router, audit.router, audio.router)
STATIC = web.PREFIX + "/static"


def content_security_policy(settings: ConsoleSettings) -> str:
    """Only this origin, for everything; map tiles also from the configured tile host."""
    tiles = ""
    if settings.tile_url and urlsplit(settings.tile_url).netloc:
        parts = urlsplit(settings.tile_url)
        tiles = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data:{tiles}; connect-src 'self'; font-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class ConsoleHeaders:
    """For console paths only: compress, and add the CSP and the other security headers
    (the API's JSON keeps its own behaviour)."""

    def __init__(self, app: ASGIApp, settings: ConsoleSettings) -> None:
        self.app = app
        # Level 4: a county's map data (540 KB of JSON) packs to 140 KB in 30 ms; level 9
        # (the default) saves a few KB more in ten times as long.
        self.compressed = GZipMiddleware(app, minimum_size=600, compresslevel=4)
        self.headers = [
            (b"content-security-policy", content_security_policy(settings).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(web.PREFIX):
            await self.app(scope, receive, send)
            return
        caching = str(scope["path"]).startswith(STATIC)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.headers]
                if not caching and not any(k == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.compressed(scope, receive, with_headers)


def _to_sign_in(request: Request, exc: Exception) -> Response:
    return web.sign_in_redirect(request)


def _not_allowed(request: Request, exc: Exception) -> Response:
    return web.render(request, "error.html", None, 403, message=str(exc))


def _home() -> RedirectResponse:
    return RedirectResponse(web.PREFIX + "/", status_code=307)


def install(app: FastAPI, settings: ConsoleSettings) -> None:
    """Serve the console under /console, with `/` redirecting there."""
    for router in PAGES:
        app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=str(resources.files("village.console") / "static")),
              name="console-static")
    app.add_api_route("/", _home, include_in_schema=False)
    app.add_exception_handler(web.SignInRequired, _to_sign_in)
    app.add_exception_handler(web.NotAllowed, _not_allowed)
    app.add_middleware(ConsoleHeaders, settings=settings)
