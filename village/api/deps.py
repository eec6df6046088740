"""Request-scoped dependencies: a pooled connection, the caller's principal, page bounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, NoReturn

import orjson
import psycopg
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ground.principal import Principal
from village.api.problems import Problem
from village.api.settings import ApiSettings
from village.api.tokens import authenticate

_bearer = HTTPBearer(auto_error=False, description="an API token from `village tokens create`")


async def plain_input(request: Request) -> None:
    """Refuse a path or query parameter, or a JSON body field, holding a NUL: no text column
    can store one, and it would otherwise surface as a database error that names no field."""
    places = [(f"path.{name}", value) for name, value in request.path_params.items()]
    places += [(f"query.{name}", value) for name, value in request.query_params.multi_items()]
    for where, value in places:
        if "\x00" in where or (isinstance(value, str) and "\x00" in value):
            _refuse_nul(where)
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()  # already read (and cached) by FastAPI: not read again
        if b"\\u0000" in body:
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                return  # FastAPI says what is wrong with it
            field = _nul_in("body", document)
            if field:
                _refuse_nul(field)


def _refuse_nul(where: str) -> NoReturn:
    shown = where.replace("\x00", "\\0")
    raise Problem(422, f"{shown}: contains a NUL character", shown)


def _nul_in(where: str, value: object) -> str | None:
    """The path (`body.tags.k`, `body.rows[3]`) of a string holding a NUL, if any."""
    stack = [(where, value)]  # not recursive: a hostile body may nest a thousand deep
    while stack:
        where, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return where
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return f"{where}.{key}"
                stack.append((f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


def api_settings(request: Request) -> ApiSettings:
    """The API section of the settings the app was built with."""
    settings: ApiSettings = request.app.state.settings.api
    return settings


def connection(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection; its transaction commits when the request succeeds."""
    with request.app.state.pool.connection() as conn:
        yield conn


# "function" scope: the transaction commits before the response is sent, so a client that
# got a 2xx can read its own write, and a failed commit is a 500, not a false success.
Conn = Annotated[psycopg.Connection, Depends(connection, scope="function")]


def principal(
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal of the bearer token, or a 401."""
    if credentials is None:
        raise Problem(401, "an API token is required (Authorization: Bearer ...)", "header.authorization")
    found = authenticate(conn, credentials.credentials)
    if found is None:
        raise Problem(401, "the API token is unknown, revoked or expired", "header.authorization")
    return found


Caller = Annotated[Principal, Depends(principal)]


def page_limit(
    settings: Annotated[ApiSettings, Depends(api_settings)],
    limit: Annotated[int | None, Query(ge=1, description="rows per page (bounded by the server)")] = None,
) -> int:
    """The page size a list request asks for, within the configured bound."""
    if limit is None:
        return settings.default_page_size
    if limit > settings.max_page_size:
        raise Problem(422, f"at most {settings.max_page_size} rows per page", "query.limit")
    return limit


Limit = Annotated[int, Depends(page_limit)]
