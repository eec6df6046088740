"""The devices service: what people do with the registry, through the CLI or the API alike.

Every function takes an open connection and the acting principal, authorizes over the
places a change touches (an operator changes devices only within their scope), and raises
the registry's refusals (`devices.registry`); each door tells them its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import psycopg

from devices import store
from devices.registry import (
    DeviceDenied,
    DeviceFilter,
    DeviceInvalid,
    DeviceNotFound,
    DeviceRecord,
    DeviceView,
    ImportRefused,
    PendingDevice,
)
from devices.registry_csv import (
    COLUMNS,
    DeviceRow,
    RowProblem,
    format_cell,
    parse_registry_csv,
    row_from_cells,
)
from ground.principal import Place, Principal, Role

CHANGES_NEED = Role.OPERATOR
COUNTY = Place()
Change = tuple[datetime, str, str, dict[str, Any]]  # when, action, who, detail


def _place(row: DeviceRow) -> Place:
    return Place(row.township, row.village)


def _require_all(principal: Principal, places: Iterable[Place]) -> None:
    outside = sorted({p for p in places if not principal.may(CHANGES_NEED, p)},
                     key=lambda p: (p.township or "", p.village or ""))
    if outside:
        where = ", ".join("/".join(x for x in (p.township, p.village) if x) for p in outside[:5])
        raise DeviceDenied(f"needs role operator over {where}")


def _scoped(principal: Principal, filters: Mapping[str, str]) -> dict[str, str] | None:
    """The filters narrowed to the principal's scope; None if they ask outside it."""
    narrowed = dict(filters)
    for column, value in (("township", principal.scope.township),
                          ("village", principal.scope.village)):
        if value is not None:
            if narrowed.setdefault(column, value) != value:
                return None
    return narrowed


def list_devices(conn: psycopg.Connection, principal: Principal, where: DeviceFilter,
                 after: str | None, limit: int) -> list[DeviceView]:
    """A page of devices in the principal's scope matching the filter, ordered by id."""
    return store.device_views(conn, principal, where, after, limit)


def shown_device(conn: psycopg.Connection, principal: Principal, device_id: str) -> DeviceView:
    """One device, if it exists and the principal may see it."""
    view = store.device_view(conn, device_id)
    if view is None:
        raise DeviceNotFound(f"device {device_id!r} not found")
    if not principal.may(Role.VIEWER, view.place):
        raise DeviceDenied("needs role viewer over this place")
    return view


def records(conn: psycopg.Connection, principal: Principal, filters: Mapping[str, str],
            limit: int | None = None) -> Iterator[DeviceRecord]:
    """The registry's records in scope matching every filter (column = value), streamed."""
    scoped = _scoped(principal, filters)
    if scoped is not None:
        yield from store.iter_devices(conn, scoped, limit)


def count(conn: psycopg.Connection, principal: Principal, filters: Mapping[str, str]) -> int:
    """How many devices in scope match every filter."""
    scoped = _scoped(principal, filters)
    return 0 if scoped is None else store.count_devices(conn, scoped)


def record(conn: psycopg.Connection, principal: Principal, device_id: str) -> DeviceRecord:
    """One device as the registry holds it, if the principal may see it."""
    found = store.get_device(conn, device_id)
    if not principal.covers(_place(found.row)):
        raise DeviceNotFound(f"{device_id!r} is not registered")
    return found


def history(conn: psycopg.Connection, principal: Principal, device_id: str,
            ) -> tuple[DeviceRecord, dict[str, Any], list[Change]]:
    """A device, what its status says (last seen, state, online, address), its latest changes."""
    found = record(conn, principal, device_id)
    return found, store.presence(conn, device_id), store.recent_changes(conn, device_id)


def validated_row(fields: Mapping[str, Any], gateways: set[str]) -> DeviceRow:
    """A registry row from typed or textual fields, validated by the registry's own rules."""
    cells = {name: format_cell(value) for name, value in fields.items() if value is not None}
    try:
        return row_from_cells(cells, gateways)
    except ValueError as exc:
        # The registry's reasons start with the column they are about.
        text = str(exc)
        column = text.split(":", 1)[0].split(" ", 1)[0]
        raise DeviceInvalid(text, column if column in COLUMNS else None) from None


def register(conn: psycopg.Connection, principal: Principal, fields: Mapping[str, Any],
             source: str) -> str:
    """Register a device (an operator over its place); returns its secret, shown once."""
    row = validated_row(fields, store.gateway_ids(conn))
    _require_all(principal, [_place(row)])
    return store.add_device(conn, row, principal.name, source=source)


def approve(conn: psycopg.Connection, principal: Principal, fields: Mapping[str, Any]) -> str:
    """Register a pending (discovered) device with its kind and place; returns its secret."""
    row = validated_row(fields, store.gateway_ids(conn))
    _require_all(principal, [_place(row)])
    return store.approve_device(conn, row, principal.name)


def pending(conn: psycopg.Connection, principal: Principal) -> list[PendingDevice]:
    """Unknown devices heard in discovery mode (they have no place yet: county operators)."""
    _require_all(principal, [COUNTY])
    return store.pending_devices(conn)


def _existing(conn: psycopg.Connection, principal: Principal, device_id: str) -> DeviceRecord:
    found = store.get_device(conn, device_id)
    _require_all(principal, [_place(found.row)])
    return found


def update(conn: psycopg.Connection, principal: Principal, device_id: str,
           changes: Mapping[str, Any]) -> DeviceRow:
    """Change some fields of a device (an operator over its old and its new place)."""
    before = _existing(conn, principal, device_id)
    merged = {name: getattr(before.row, name) for name in COLUMNS} | dict(changes)
    row = validated_row(merged, store.gateway_ids(conn))
    _require_all(principal, [_place(row)])
    # Every column: the merged row is the whole device (an upsert inserts before it updates).
    store.upsert_devices(conn, [row], COLUMNS, principal.name, issue_secrets=False,
                         source="api")
    return row


def retire(conn: psycopg.Connection, principal: Principal, device_id: str) -> Place:
    """Retire a device: its history stays, its messages are refused from now on."""
    place = _place(_existing(conn, principal, device_id).row)
    store.retire_device(conn, device_id, principal.name)
    return place


def remove(conn: psycopg.Connection, principal: Principal, device_id: str) -> dict[str, int]:
    """Delete a device and its whole history; returns the rows deleted per table."""
    _existing(conn, principal, device_id)
    return store.remove_device(conn, device_id, principal.name)


def rotate_secret(conn: psycopg.Connection, principal: Principal, device_id: str) -> str:
    """Issue a new secret for a device and return it (shown once)."""
    _existing(conn, principal, device_id)
    return store.rotate_secret(conn, device_id, principal.name)


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did, with the secrets of new devices (shown once)."""

    created: int
    updated: int
    unchanged: int
    problems: list[RowProblem]
    secrets: list[tuple[str, str]]
    without_secret: list[str]


def import_registry(conn: psycopg.Connection, principal: Principal, data: bytes | IO[bytes], *,
                    skip_invalid: bool, source: str, issue_secrets: bool = True,
                    keep: Callable[[list[tuple[str, str]]], None] | None = None,
                    ) -> ImportOutcome:
    """Validate a registry CSV and upsert it: nothing is stored if a row is bad, unless
    `skip_invalid`. `keep` gets the new secrets before the import commits."""
    try:
        parsed = parse_registry_csv(data, store.gateway_ids(conn))
    except ValueError as exc:
        raise DeviceInvalid(str(exc)) from None
    if parsed.problems and not skip_invalid:
        raise ImportRefused(parsed.problems)
    rows: Sequence[DeviceRow] = parsed.rows
    if not principal.may(CHANGES_NEED, COUNTY):  # only a narrower scope has places to check
        current = [Place(t, v) for t, v in store.places_of(conn, [r.device_id for r in rows])]
        _require_all(principal, [_place(row) for row in rows] + current)
    with conn.transaction():
        result = store.upsert_devices(conn, rows, parsed.columns, principal.name,
                                      issue_secrets=issue_secrets, source=source)
        if keep is not None:
            keep(result.secrets)
    return ImportOutcome(result.created, result.updated, result.unchanged, parsed.problems,
                         result.secrets, result.without_secret)
