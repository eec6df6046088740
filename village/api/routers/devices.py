"""Devices: list with filters, show, and registry changes, through the devices service
(devices.service), audited here."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from broadcast.command_store import last_valve
from devices import service
from devices.registry import DeviceFilter, DeviceView, ImportRefused
from devices.registry_csv import RowProblem
from ground.principal import Place
from village.api import audit
from village.api.deps import Caller, Conn, Limit
from village.api.problems import FieldError, Problem

router = APIRouter(prefix="/devices", tags=["devices"])
IMPORT_PATH = "/devices/import"  # its body limit is the import's (ApiSettings.max_import_bytes)
# An upload is held in memory up to this, then on disk: never whole in memory.
SPOOL_IN_MEMORY_BYTES = 1024 * 1024


class DevicePage(BaseModel):
    """A page of devices; pass `next_after` as `after` for the next one."""

    items: list[DeviceView]
    next_after: str | None


@router.get("", summary="List devices")
def list_devices(
    conn: Conn, caller: Caller, limit: Limit,
    kind: str | None = None, township: str | None = None, village: str | None = None,
    grid: str | None = None, site: str | None = None,
    lifecycle: Literal["active", "retired"] | None = None,
    status: Annotated[Literal["online", "offline"] | None, Query()] = None,
    after: Annotated[str | None, Query(description="the last device id of the previous page")] = None,
) -> DevicePage:
    """Devices in the caller's scope, filtered, ordered by id."""
    where = DeviceFilter(kind, township, village, grid, site, lifecycle,
                         None if status is None else status == "online")
    rows = service.list_devices(conn, caller, where, after, limit)
    return DevicePage(items=rows,
                      next_after=rows[-1].device_id if len(rows) == limit else None)


@dataclass(frozen=True)
class DeviceDetail(DeviceView):
    """One device as its page shows it: with what it last reported of its valve, if any."""

    valve_open: bool | None = None
    valve_seen_at: datetime | None = None


@router.get("/{device_id}", summary="Show a device")
def show_device(device_id: str, conn: Conn, caller: Caller) -> DeviceDetail:
    """One device, if it is in the caller's scope, with its valve as last reported."""
    view = service.shown_device(conn, caller, device_id)
    valve = last_valve(conn, device_id)
    return DeviceDetail(**asdict(view), valve_open=valve[0] if valve else None,
                        valve_seen_at=valve[1] if valve else None)


class DeviceFields(BaseModel):
    """The fields of a device a person may set (validated by the registry's rules)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    site: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    installed_on: date | None = None
    gateway_id: str | None = None
    tags: dict[str, str] | None = None


class NewDevice(DeviceFields):
    """A device to register."""

    device_id: str
    kind: str
    village: str  # required here, optional in an update


class Registered(BaseModel):
    """A new device and its broker secret: shown this once, only its hash is kept."""

    device: DeviceView
    secret: str


class ImportReport(BaseModel):
    """What an import did; `secrets` holds the new devices' broker secrets, shown once."""

    created: int
    updated: int
    unchanged: int
    skipped: list[FieldError]
    secrets: dict[str, str]


@router.post("", status_code=201, summary="Register a device")
def create_device(body: NewDevice, conn: Conn, caller: Caller) -> Registered:
    """Register a device (operator over its place); returns its broker secret once."""
    secret = service.register(conn, caller, body.model_dump(exclude_none=True), source="api")
    device = service.shown_device(conn, caller, body.device_id)
    audit.record(conn, caller, "device.create", f"device:{body.device_id}", device.place,
                 {"kind": device.kind})
    return Registered(device=device, secret=secret)


@router.patch("/{device_id}", summary="Change a device")
def update_device(device_id: str, body: DeviceFields, conn: Conn, caller: Caller) -> DeviceView:
    """Change the given fields (operator over the old and the new place)."""
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise Problem(422, "no field to change", "body")
    row = service.update(conn, caller, device_id, changes)
    audit.record(conn, caller, "device.update", f"device:{device_id}",
                 Place(row.township, row.village), {"fields": sorted(changes)})
    return service.shown_device(conn, caller, device_id)


@router.post("/{device_id}/retire", summary="Retire a device")
def retire_device(device_id: str, conn: Conn, caller: Caller) -> DeviceView:
    """Retire a device: its history stays, its messages are refused from now on."""
    place = service.retire(conn, caller, device_id)
    audit.record(conn, caller, "device.retire", f"device:{device_id}", place)
    return service.shown_device(conn, caller, device_id)


async def csv_body(request: Request) -> AsyncIterator[IO[bytes]]:
    """The body of a CSV upload as a file, written as it streams in (the body limit bounds
    its size; past a megabyte it waits on disk, not in memory)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "text/csv":
        raise Problem(415, "send the file as text/csv", "header.content-type")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as file:
        async for chunk in request.stream():
            file.write(chunk)
        file.seek(0)
        yield file


@router.post(IMPORT_PATH.removeprefix(router.prefix), summary="Import a registry CSV",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}}}}})
def import_devices(
    data: Annotated[IO[bytes], Depends(csv_body)], conn: Conn, caller: Caller,
    skip_invalid: Annotated[bool, Query(description="import the good rows even if some are bad")] = False,
) -> ImportReport:
    """Validate every row of a registry CSV (docs/registry.md) and upsert them; a bad row
    stops the whole import unless `skip_invalid`."""
    try:
        outcome = service.import_registry(conn, caller, data, skip_invalid=skip_invalid,
                                          source="api-import")
    except ImportRefused as exc:
        faults = _faults(exc.problems)
        raise Problem(422, str(exc), faults[0].field, faults) from None
    skipped = _faults(outcome.problems)
    rows = outcome.created + outcome.updated + outcome.unchanged
    audit.record(conn, caller, "device.import", f"devices:{rows}", None,
                 {"created": outcome.created, "updated": outcome.updated, "skipped": len(skipped)})
    return ImportReport(created=outcome.created, updated=outcome.updated,
                        unchanged=outcome.unchanged, skipped=skipped,
                        secrets=dict(outcome.secrets))


def _faults(problems: list[RowProblem]) -> list[FieldError]:
    return [FieldError(field=f"body.line[{p.line}]", message=str(p)) for p in problems]
