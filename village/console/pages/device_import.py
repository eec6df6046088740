"""Importing devices from a registry CSV: every bad row is shown, and nothing is written
unless every row is good."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from ground.principal import Role
from village.api import device_changes
from village.api.deps import Conn
from village.api.problems import FieldError, Problem
from village.console import web

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
MAX_CSV_BYTES = 20 * 1024 * 1024


def _page(request: Request, session: web.Session, status: int = 200,
          outcome: device_changes.ImportOutcome | None = None, error: str | None = None,
          faults: list[FieldError] | None = None) -> Response:
    return web.render(request, "device_import.html", session, status, page="devices",
                      outcome=outcome, error=error, faults=faults or [])


@router.get("/devices/import")
def import_form(request: Request, session: web.SignedIn) -> Response:
    """The upload form."""
    web.require(session, Role.OPERATOR)
    return _page(request, session)


@router.post("/devices/import")
async def import_devices(request: Request, conn: Conn, session: web.SignedIn,
                         form: web.Form) -> Response:
    """Validate the whole file, then import it, or show every bad row and import nothing."""
    web.require(session, Role.OPERATOR)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, session, 422, error="choose a CSV file")
    data = await upload.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        return _page(request, session, 413, error=f"at most {MAX_CSV_BYTES // 2**20} MB")
    try:
        outcome = device_changes.import_csv(conn, session.user.principal, data,
                                            skip_invalid=False)
    except Problem as exc:
        return _page(request, session, 422, error=exc.detail, faults=exc.errors)
    return _page(request, session, outcome=outcome)
