"""Reads of the device registry for the API, limited to the caller's scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from ground.principal import Place, Principal, Role
from village.api.problems import forbidden, not_found


@dataclass(frozen=True)
class DeviceRow:
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
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None

    @property
    def place(self) -> Place:
        """Where the device is, for authorization."""
        return Place(self.township, self.village)


@dataclass(frozen=True)
class DeviceFilter:
    """What a device list asks for (every field optional)."""

    kind: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    site: str | None = None
    lifecycle: str | None = None
    online: bool | None = None
    search: str | None = None  # the start of an id or any part of a name
    firmware: str | None = None


_SELECT = sql.SQL(
    "SELECT d.device_id, d.kind, d.name, d.township, d.village, d.grid, d.site, d.latitude,"
    " d.longitude, d.installed_on, coalesce(s.firmware, d.firmware) AS firmware, d.gateway_id,"
    " d.tags, d.lifecycle, coalesce(s.online, false) AS online, s.last_seen, d.created_at,"
    " d.updated_at, d.retired_at"
    " FROM devices d LEFT JOIN device_status s ON s.device_id = d.device_id"
)


def conditions(principal: Principal, alias: str, equal: Mapping[str, Any],
               after: str | None = None) -> tuple[sql.Composable, list[Any]]:
    """A WHERE condition: in the principal's scope, each given column equal to its value
    (None: any), and the device id after `after` (keyset paging)."""
    scope = (("township", principal.scope.township), ("village", principal.scope.village))
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for column, value in (*scope, *equal.items()):
        if value is not None:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(alias, column)))
            params.append(value)
    if after is not None:
        parts.append(sql.SQL("{} > %s").format(sql.Identifier(alias, "device_id")))
        params.append(after)
    return sql.SQL(" AND ").join(parts), params


def list_devices(conn: psycopg.Connection, principal: Principal, where: DeviceFilter,
                 after: str | None, limit: int) -> list[DeviceRow]:
    """Devices in scope matching the filter, ordered by id, after the `after` id."""
    columns = ("kind", "township", "village", "grid", "site", "lifecycle")
    condition, params = conditions(principal, "d", {c: getattr(where, c) for c in columns}, after)
    if where.online is not None:
        condition = sql.SQL("{} AND coalesce(s.online, false) = %s").format(condition)
        params.append(where.online)
    if where.search:
        condition = sql.SQL("{} AND (d.device_id LIKE %s OR d.name ILIKE %s)").format(condition)
        escaped = where.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [escaped + "%", "%" + escaped + "%"]
    if where.firmware:
        condition = sql.SQL("{} AND coalesce(s.firmware, d.firmware) = %s").format(condition)
        params.append(where.firmware)
    query = sql.SQL("{} WHERE {} ORDER BY d.device_id LIMIT %s").format(_SELECT, condition)
    with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        cur.execute(query, [*params, limit])
        return cur.fetchall()


def get_device(conn: psycopg.Connection, device_id: str) -> DeviceRow | None:
    """One device by id (whatever its scope: the caller checks it)."""
    with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        cur.execute(sql.SQL("{} WHERE d.device_id = %s").format(_SELECT), (device_id,))
        return cur.fetchone()


def visible_device(conn: psycopg.Connection, principal: Principal, device_id: str) -> DeviceRow:
    """The device if it exists and the principal may see it (404/403 otherwise)."""
    row = get_device(conn, device_id)
    if row is None:
        raise not_found(f"device {device_id!r}")
    if not principal.may(Role.VIEWER, row.place):
        raise forbidden("needs role viewer over this place")
    return row
