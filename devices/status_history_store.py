"""The status history's tables: record transitions, read a device's recent ones."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from devices.status_history import StatusChange

# The recorded state changes only where it differs (the check runs again on the row's newest
# version when another writer held it), and only changed rows enter the history. Rows go in
# device order so writers lock shared devices in the same order.
_RECORD = """
WITH wanted AS (
    SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::boolean[], %s::text[])
        AS w(device_id, at, online, reason)
), changed AS (
    INSERT INTO device_status_recorded AS r (device_id, online, at)
    SELECT device_id, online, at FROM wanted ORDER BY device_id
    ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, at = excluded.at
    WHERE r.online IS DISTINCT FROM excluded.online
    RETURNING device_id
)
INSERT INTO device_status_changes (device_id, at, online, reason)
SELECT w.device_id, w.at, w.online, w.reason FROM wanted w JOIN changed USING (device_id)
"""


def record(cur: psycopg.Cursor | psycopg.Connection, changes: Sequence[StatusChange]) -> int:
    """Record the changes that differ from each device's recorded state; return how many."""
    if not changes:
        return 0
    latest = {c.device_id: c for c in sorted(changes, key=lambda c: c.at)}.values()
    result = cur.execute(_RECORD, ([c.device_id for c in latest], [c.at for c in latest],
                                   [c.online for c in latest], [c.reason for c in latest]))
    return result.rowcount


def recorded_online(conn: psycopg.Connection, among: Sequence[str]) -> list[str]:
    """Those of `among` whose recorded state is online."""
    return [r[0] for r in conn.execute(
        "SELECT device_id FROM device_status_recorded WHERE online AND device_id = ANY(%s)",
        (list(among),)).fetchall()]


def recent(conn: psycopg.Connection, device_id: str, limit: int = 20) -> list[StatusChange]:
    """A device's newest transitions, newest first."""
    rows = conn.execute(
        "SELECT device_id, at, online, reason FROM device_status_changes WHERE device_id = %s"
        " ORDER BY at DESC, id DESC LIMIT %s", (device_id, limit)).fetchall()
    return [StatusChange(*row) for row in rows]
