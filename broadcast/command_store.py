"""The device command tables' SQL (adapter): commands, their deliveries, and their targets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from broadcast.delivery import Change, DeliveryRow
from broadcast.device_command import Target
from broadcast.model import FINAL, DeliveryState
from broadcast.store import DELIVERY_COLUMNS, wake_daemon
from ground.principal import Principal

TABLE = "device_command_deliveries"
SELECTABLE = ("kind", "township", "village", "grid", "site")


@dataclass(frozen=True, slots=True)
class CommandRow:
    """A device command as recorded."""

    command_id: str
    created_at: datetime
    created_by: str
    creator_role: str
    why: str
    op: str
    args: dict[str, Any]
    expires_at: datetime
    selection: str
    alert_id: int | None
    status: str


_COMMAND_COLUMNS = ", ".join(CommandRow.__slots__)
# The engine reads these as it reads a broadcast's: the command id in `broadcast_id`.
_DELIVERY_COLUMNS = DELIVERY_COLUMNS[TABLE]
# A meter has a valve once it has reported `valve_open`: latest_values holds that series'
# newest reading (kept with the readings by ingest, and by `village_merge_latest` for any
# other writer), so a county's selection reads one row per meter, not every partition.
_TARGET = ("SELECT d.device_id, d.kind, d.township, d.village, d.lifecycle,"
           " v.device_id IS NOT NULL AS has_valve, d.gateway_id FROM devices d"
           " LEFT JOIN latest_values v ON v.device_id = d.device_id AND v.metric = 'valve_open'")


def targets(conn: psycopg.Connection, device_ids: Sequence[str] | None = None,
            filters: Mapping[str, str] | None = None) -> tuple[list[Target], list[str]]:
    """The devices named (and the names not registered), or those matching every filter."""
    unknown = [name for name in filters or {} if name not in SELECTABLE]
    if unknown:
        raise ValueError(f"cannot select devices by {unknown[0]!r}")
    clauses = [f"d.{name} = %s" for name in filters or {}]
    params: list[Any] = list((filters or {}).values())
    if device_ids is not None:
        clauses.append("d.device_id = ANY(%s)")
        params.append(list(device_ids))
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with conn.cursor(row_factory=class_row(Target)) as cur:
        found = cur.execute(_TARGET + where + " ORDER BY d.device_id", params).fetchall()  # noqa: S608 - columns from SELECTABLE
    known = {target.device_id for target in found}
    return found, [name for name in device_ids or () if name not in known]


def insert_command(conn: psycopg.Connection, command_id: str, principal: Principal, why: str,
                   op: str, args: Mapping[str, Any], expires_at: datetime, selection: str,
                   device_ids: Sequence[str], now: datetime, alert_id: int | None = None,
                   ) -> None:
    """Record a command and one queued delivery per device; wake the daemon on commit."""
    conn.execute(
        "INSERT INTO device_commands (command_id, created_at, created_by, creator_role, why, op,"
        " args, expires_at, selection, alert_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (command_id, now, principal.name, principal.role.label, why, op, Jsonb(dict(args)),
         expires_at, selection, alert_id))
    conn.execute(
        "INSERT INTO device_command_deliveries (command_id, device_id, expires_at, updated_at)"
        " SELECT %s, unnest(%s::text[]), %s, %s", (command_id, list(device_ids), expires_at, now))
    wake_daemon(conn, command_id)


def fetch_command(conn: psycopg.Connection, command_id: str) -> CommandRow | None:
    """One command, or None."""
    with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        return cur.execute(f"SELECT {_COMMAND_COLUMNS} FROM device_commands"  # noqa: S608 - constant columns
                           " WHERE command_id = %s", (command_id,)).fetchone()


def claim_new(conn: psycopg.Connection, now: datetime) -> list[CommandRow]:
    """Commands no daemon has handled yet, marked active (skipping ones another holds)."""
    with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        return cur.execute(
            "UPDATE device_commands SET status = 'active', dispatched_at = %s"  # noqa: S608 - constant columns
            " WHERE command_id IN (SELECT command_id FROM device_commands WHERE status = 'new'"
            "  ORDER BY created_at FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_COMMAND_COLUMNS}", (now,)).fetchall()


def deliveries(conn: psycopg.Connection, command_id: str | None = None,
               states: Iterable[DeliveryState] | None = None,
               device_ids: Sequence[str] | None = None,
               unexpired_at: datetime | None = None) -> list[DeliveryRow]:
    """Deliveries filtered by command, state, device and not expired at `unexpired_at`, locked."""
    params = {"command": command_id,
              "states": None if states is None else [str(state) for state in states],
              "devices": None if device_ids is None else list(device_ids),
              "now": unexpired_at}
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        return cur.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM device_command_deliveries"  # noqa: S608 - constant columns
            " WHERE (%(command)s::text IS NULL OR command_id = %(command)s)"
            " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))"
            " AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))"
            " AND (%(now)s::timestamptz IS NULL OR expires_at > %(now)s) FOR UPDATE",
            params).fetchall()


def expired_open(conn: psycopg.Connection, now: datetime) -> list[DeliveryRow]:
    """Deliveries whose command has expired and that could still change, locked."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        return cur.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM device_command_deliveries"  # noqa: S608 - constant columns
            " WHERE state IN ('queued', 'offline', 'sent') AND expires_at <= %s FOR UPDATE",
            (now,)).fetchall()


def report(conn: psycopg.Connection, command_id: str) -> dict[str, Any]:
    """How many deliveries are in each state, and each device's state and reason."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT device_id, state, reason, attempts, last_sent_at, finished_at"
            " FROM device_command_deliveries WHERE command_id = %s ORDER BY device_id",
            (command_id,)).fetchall()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return {"counts": counts, "devices": rows}


def last_valve(conn: psycopg.Connection, device_id: str) -> tuple[bool, datetime] | None:
    """The valve position a meter last reported, and when; None if it never did."""
    row = conn.execute(
        "SELECT value, ts FROM latest_values WHERE device_id = %s AND metric = 'valve_open'",
        (device_id,)).fetchone()
    return None if row is None else (bool(row[0]), row[1])


def places(conn: psycopg.Connection, command_id: str) -> list[dict[str, Any]]:
    """The distinct places (township, village) of a command's devices."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT DISTINCT dev.township, dev.village FROM device_command_deliveries d"
            " JOIN devices dev USING (device_id) WHERE d.command_id = %s",
            (command_id,)).fetchall()


def record_alert_outcomes(conn: psycopg.Connection, changes: Sequence[Change]) -> None:
    """Put the final answer of a command an alert sent on that alert's timeline."""
    final = [c for c in changes if c.new in FINAL]
    if not final:
        return
    conn.execute(
        "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, detail)"
        " SELECT c.alert_id, x.at, 'firing', 'command_' || x.state,"
        "  c.op || ' ' || c.args::text || ' to ' || x.device_id"
        "  || coalesce(': ' || x.reason, '')"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
        "  AS x(command_id, device_id, state, reason, at)"
        " JOIN device_commands c USING (command_id) WHERE c.alert_id IS NOT NULL",
        ([c.broadcast_id for c in final], [c.device_id for c in final],
         [str(c.new) for c in final], [c.reason for c in final], [c.at for c in final]))
