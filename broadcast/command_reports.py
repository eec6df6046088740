"""Device commands read back for people (adapter): who may follow one, its deliveries counted
by state and a page at a time (a command to 15,000 meters is followed without loading them
all), and the commands one device was sent with what it answered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from broadcast import command_store
from broadcast.command_store import CommandRow
from broadcast.device_command import CommandDenied
from broadcast.model import FINAL, DeliveryState
from ground.errors import NotFound
from ground.principal import Place, Principal, Role


class CommandNotFound(NotFound):
    """No command with that id."""


def visible_command(conn: psycopg.Connection, principal: Principal,
                    command_id: str) -> CommandRow:
    """The command, for a principal who may view every device it went to."""
    row = command_store.fetch_command(conn, command_id)
    if row is None:
        raise CommandNotFound(f"no command {command_id!r}")
    places = command_store.places(conn, command_id)
    if not all(principal.may(Role.VIEWER, Place(p["township"], p["village"])) for p in places):
        raise CommandDenied("needs role viewer over every device of this command")
    return row


def state_counts(conn: psycopg.Connection, command_id: str) -> dict[str, int]:
    """How many of the command's deliveries are in each state."""
    rows = conn.execute("SELECT state, count(*) FROM device_command_deliveries"
                        " WHERE command_id = %s GROUP BY state ORDER BY state",
                        (command_id,)).fetchall()
    return {state: count for state, count in rows}


def delivery_page(conn: psycopg.Connection, command_id: str, state: str | None = None,
                  after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Up to `limit` deliveries by device id after `after`, in `state` if given, with the
    device's place."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT d.device_id, d.state, d.reason, d.attempts, d.last_sent_at, d.finished_at,"
            " v.township, v.village FROM device_command_deliveries d"
            " LEFT JOIN devices v ON v.device_id = d.device_id"
            " WHERE d.command_id = %(command)s"
            " AND (%(state)s::text IS NULL OR d.state = %(state)s)"
            " AND (%(after)s::text IS NULL OR d.device_id > %(after)s)"
            " ORDER BY d.device_id LIMIT %(limit)s",
            {"command": command_id, "state": state, "after": after, "limit": limit}).fetchall()


def sent_to_device(conn: psycopg.Connection, device_id: str,
                   limit: int = 10) -> list[dict[str, Any]]:
    """The newest commands the device was sent, each with its answer (state and reason)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT c.command_id, c.created_at, c.created_by, c.why, c.op, c.args,"
            " c.expires_at, d.state, d.reason, d.attempts, d.finished_at"
            " FROM device_command_deliveries d JOIN device_commands c USING (command_id)"
            " WHERE d.device_id = %s ORDER BY c.created_at DESC LIMIT %s",
            (device_id, limit)).fetchall()


def recent_commands(conn: psycopg.Connection, scope: Place, since: datetime,
                    limit: int = 50) -> list[dict[str, Any]]:
    """The newest commands since `since` whose every device lies within `scope` (those a
    viewer there may follow), each with how many devices it went to, are done, are open."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT c.command_id, c.created_at, c.created_by, c.why, c.op, c.args, c.selection,"
            " s.devices, s.done, s.open FROM device_commands c CROSS JOIN LATERAL ("
            "  SELECT count(*) AS devices, count(*) FILTER (WHERE d.state = 'done') AS done,"
            "  count(*) FILTER (WHERE d.state = ANY(%(open)s)) AS open,"
            "  bool_and((%(township)s::text IS NULL OR v.township = %(township)s)"
            "   AND (%(village)s::text IS NULL OR v.village = %(village)s)) AS within"
            "  FROM device_command_deliveries d LEFT JOIN devices v ON v.device_id = d.device_id"
            "  WHERE d.command_id = c.command_id) s"
            " WHERE c.created_at >= %(since)s AND s.within"
            " ORDER BY c.created_at DESC LIMIT %(limit)s",
            {"since": since, "limit": limit, "township": scope.township,
             "village": scope.village,
             "open": [str(state) for state in DeliveryState if state not in FINAL]}).fetchall()


def any_open(states: Sequence[str]) -> bool:
    """Whether any of these delivery states may still change."""
    return any(DeliveryState(state) not in FINAL for state in states)
