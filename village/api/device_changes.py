"""Registry changes through the API: authorized over the places touched, then the registry's
own functions (devices.registry), audited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import psycopg

from devices import registry
from devices.registry_csv import (
    COLUMNS,
    DeviceRow,
    format_cell,
    parse_registry_csv,
    row_from_cells,
)
from ground.principal import Place, Principal, Role
from village.api import audit
from village.api.problems import FieldError, Problem, forbidden, not_found

NEEDED = Role.OPERATOR


def _place(row: DeviceRow) -> Place:
    return Place(row.township, row.village)


def _require_all(principal: Principal, places: Iterable[Place]) -> None:
    outside = sorted({p for p in places if not principal.may(NEEDED, p)},
                     key=lambda p: (p.township or "", p.village or ""))
    if outside:
        where = ", ".join("/".join(x for x in (p.township, p.village) if x) for p in outside[:5])
        raise forbidden(f"needs role operator over {where}")


def validated_row(fields: Mapping[str, Any], gateways: set[str]) -> DeviceRow:
    """A registry row from API fields, validated by the registry's own rules (422 if bad)."""
    cells = {name: format_cell(value) for name, value in fields.items() if value is not None}
    try:
        return row_from_cells(cells, gateways)
    except ValueError as exc:
        # The registry's reasons start with the column they are about.
        text = str(exc)
        column = text.split(":", 1)[0].split(" ", 1)[0]
        raise Problem(422, text, f"body.{column}" if column in COLUMNS else "body") from None


def _existing(conn: psycopg.Connection, device_id: str) -> registry.DeviceRecord:
    try:
        return registry.get_device(conn, device_id)
    except registry.RegistryError:
        raise not_found(f"device {device_id!r}") from None


def create(conn: psycopg.Connection, principal: Principal, fields: Mapping[str, Any]) -> str:
    """Register a device; returns its broker secret (shown once)."""
    row = validated_row(fields, registry.gateway_ids(conn))
    _require_all(principal, [_place(row)])
    try:
        secret = registry.add_device(conn, row, principal.name, source="api")
    except registry.RegistryError as exc:
        raise Problem(409, str(exc), "body.device_id") from None
    audit.record(conn, principal, "device.create", f"device:{row.device_id}", _place(row),
                 {"kind": row.kind})
    return secret


def update(conn: psycopg.Connection, principal: Principal, device_id: str,
           changes: Mapping[str, Any]) -> None:
    """Change some fields of a device (authorized over its old and its new place)."""
    before = _existing(conn, device_id)
    merged = {name: getattr(before.row, name) for name in COLUMNS} | dict(changes)
    row = validated_row(merged, registry.gateway_ids(conn))
    _require_all(principal, [_place(before.row), _place(row)])
    # Every column: the merged row is the whole device (an upsert inserts before it updates).
    registry.upsert_devices(conn, [row], COLUMNS, principal.name,
                            issue_secrets=False, source="api")
    audit.record(conn, principal, "device.update", f"device:{device_id}", _place(row),
                 {"fields": sorted(changes)})


def retire(conn: psycopg.Connection, principal: Principal, device_id: str) -> None:
    """Retire a device: its history stays, its messages are refused from now on."""
    before = _existing(conn, device_id)
    _require_all(principal, [_place(before.row)])
    try:
        registry.retire_device(conn, device_id, principal.name)
    except registry.RegistryError as exc:
        raise Problem(409, str(exc)) from None
    audit.record(conn, principal, "device.retire", f"device:{device_id}", _place(before.row))


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did, with the secrets of new devices (shown once)."""

    created: int
    updated: int
    unchanged: int
    skipped: list[FieldError]
    secrets: list[tuple[str, str]]


def import_csv(conn: psycopg.Connection, principal: Principal, data: bytes | IO[bytes],
               skip_invalid: bool) -> ImportOutcome:
    """Validate a registry CSV and upsert it: nothing is stored if a row is bad, unless skipped."""
    try:
        parsed = parse_registry_csv(data, registry.gateway_ids(conn))
    except ValueError as exc:
        raise Problem(422, str(exc), "body") from None
    faults = [FieldError(field=f"body.line[{p.line}]", message=str(p)) for p in parsed.problems]
    if faults and not skip_invalid:
        raise Problem(422, f"{len(faults)} bad rows; nothing imported", faults[0].field, faults)
    rows: Sequence[DeviceRow] = parsed.rows
    current = [Place(township, village) for township, village in conn.execute(
        "SELECT township, village FROM devices WHERE device_id = ANY(%s)",
        ([row.device_id for row in rows],))]
    _require_all(principal, [_place(row) for row in rows] + current)
    result = registry.upsert_devices(conn, rows, parsed.columns, principal.name,
                                     issue_secrets=True, source="api-import")
    audit.record(conn, principal, "device.import", f"devices:{len(rows)}", None,
                 {"created": result.created, "updated": result.updated,
                  "skipped": len(faults)})
    return ImportOutcome(result.created, result.updated, result.unchanged, faults, result.secrets)
