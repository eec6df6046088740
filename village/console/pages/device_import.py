"""Importing devices from a registry CSV: every bad row is shown, and nothing is written
unless every row is good."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from devices import service
from devices.registry import DeviceDenied, DeviceInvalid, ImportRefused
from devices.registry_csv import RowProblem
from ground.principal import Role
from village.api import audit
from village.api.deps import Conn
from village.console import web

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
MAX_CSV_BYTES = 20 * 1024 * 1024


def _page(request: Request, session: web.Session, status: int = 200,
          outcome: service.ImportOutcome | None = None, error: str | None = None,
          faults: list[RowProblem] | None = None) -> Response:
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
    principal = session.user.principal
    try:
        outcome = service.import_registry(conn, principal, data, skip_invalid=False,
                                          source="console-import")
    except ImportRefused as exc:
        return _page(request, session, 422, error=str(exc), faults=exc.problems)
    except (DeviceInvalid, DeviceDenied) as exc:
        return _page(request, session, 422, error=str(exc))
    audit.record(conn, principal, "device.import", f"devices:{outcome.created + outcome.updated}",
                 None, {"created": outcome.created, "updated": outcome.updated})
    return _page(request, session, outcome=outcome)
