"""Errors as RFC 9457 problem details (`application/problem+json`), never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ground.errors import Conflict, Denied, Invalid, NotFound, Refused
from ground.validation import field_path

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One invalid input: where it is and what is wrong with it."""

    field: str
    message: str


class ProblemDetails(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    field: str | None = None
    errors: list[FieldError] = []


class Problem(Exception):
    """An error the client can act on; `field` names the input at fault."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.errors = errors or []


def not_found(what: str) -> Problem:
    """A 404 naming what was not found."""
    return Problem(404, f"{what} not found")


def forbidden(detail: str = "outside your role or scope") -> Problem:
    """A 403 for an action the principal may not take."""
    return Problem(403, detail)


# Every domain service's refusals, by kind, as HTTP statuses: the one table of the API.
REFUSAL_STATUS: dict[type[Refused], int] = {NotFound: 404, Denied: 403, Conflict: 409, Invalid: 422}


def refusal_status(exc: Refused) -> int:
    """The status of a domain refusal: its kind's, found along its classes."""
    return next(REFUSAL_STATUS[cls] for cls in type(exc).__mro__ if cls in REFUSAL_STATUS)


@contextmanager
def about(field: str) -> Iterator[None]:
    """Domain refusals raised here that name no input are about this field of the body."""
    try:
        yield
    except Refused as exc:
        exc.field = exc.field or field
        raise


_TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 410: "Gone", 413: "Content too large",
    415: "Unsupported media type", 422: "Invalid input", 500: "Internal error",
    503: "Unavailable",
}


def problem_response(status: int, detail: str | None, field: str | None = None,
                     errors: list[FieldError] | None = None,
                     headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A problem-details response."""
    body = ProblemDetails(title=_TITLES.get(status, "Error"), status=status, detail=detail,
                          field=field, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_TYPE,
                        headers=dict(headers) if headers else None)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, exc.field, exc.errors)


async def _on_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    status = refusal_status(exc)
    field = f"body.{exc.field}" if exc.field else ("body" if status == 422 else None)
    return problem_response(status, str(exc), field)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=field_path(e.get("loc", ()), "", brackets=True), message=str(e.get("msg", "")))
              for e in exc.errors()]
    first = errors[0] if errors else None
    return problem_response(
        422, f"{first.field}: {first.message}" if first else "invalid input",
        first.field if first else None, errors,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # A 413 is always about the body (the body limit raises it while the body streams in).
    field = "body" if exc.status_code == 413 else None
    return problem_response(exc.status_code, str(exc.detail), field, headers=exc.headers)


async def _on_bad_value(request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot take (a NUL in text, a number out of range): the
    # client's fault, and the database's wording may name internals, so it is not passed on.
    return problem_response(422, "a value is malformed or out of range")


async def _on_anything(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the log, never to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "an internal error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Route every error of the app through problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(Refused, _on_refused)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(psycopg.DataError, _on_bad_value)
    app.add_exception_handler(Exception, _on_anything)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": _TITLES[status],
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
    for status in (400, 401, 403, 404, 409, 413, 415, 422, 500)
}
