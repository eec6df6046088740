"""Devices: list with filters, show, and registry changes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from village.api import device_store
from village.api.deps import Caller, Conn, Limit
from village.api.problems import forbidden, not_found
from village.principal import Place, Principal, Role

router = APIRouter(prefix="/devices", tags=["devices"])

class Device(BaseModel):
    """A registered device with its presence."""

    device_id: str
    kind: str
    name: str | None
    township: str | None
    village: str
    grid: str | None
    site: str | None
    latitude: float | None
    longitude: float | None
    installed_on: date | None
    firmware: str | None
    gateway_id: str | None
    tags: dict[str, Any]
    lifecycle: str
    online: bool
    last_seen: datetime | None


class DevicePage(BaseModel):
    """A page of devices; pass `next_after` as `after` for the next one."""

    items: list[Device]
    next_after: str | None


def to_model(row: device_store.DeviceRow) -> Device:
    """The API shape of a registry row."""
    return Device.model_validate(row, from_attributes=True)


def require(principal: Principal, role: Role, place: Place) -> None:
    """Raise a 403 unless the principal has `role` over `place`."""
    if not principal.may(role, place):
        raise forbidden(f"needs role {role.name.lower()} over this place")


def visible_device(conn: Any, principal: Principal, device_id: str) -> device_store.DeviceRow:
    """The device if it exists and the principal may see it (404/403 otherwise)."""
    row = device_store.get_device(conn, device_id)
    if row is None:
        raise not_found(f"device {device_id!r}")
    require(principal, Role.VIEWER, row.place)
    return row


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
    where = device_store.DeviceFilter(
        kind, township, village, grid, site, lifecycle,
        None if status is None else status == "online")
    rows = device_store.list_devices(conn, caller, where, after, limit)
    return DevicePage(items=[to_model(r) for r in rows],
                      next_after=rows[-1].device_id if len(rows) == limit else None)


@router.get("/{device_id}", summary="Show a device")
def show_device(device_id: str, conn: Conn, caller: Caller) -> Device:
    """One device, if it is in the caller's scope."""
    return to_model(visible_device(conn, caller, device_id))
