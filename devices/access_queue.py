"""Registry changes waiting to reach the broker's dynamic security plugin (database adapter).

Every registry write that issues a secret or ends a login queues it here in its own
transaction, so a change made through any door (CLI, CSV import, API, console) reaches
the broker once the access daemon sees it, and one made while the broker is away waits
for it. Nothing is queued unless live access is on (`broker_live_access`): a broker run
from passwd/ACL files has no daemon to empty the queue, and a queued grant holds a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg

from devices.dynsec import Change, Grant, Revoke, Role, superseding

CHANNEL = "broker_access"  # NOTIFY channel: the daemon wakes at once
_NOTIFY = ("SELECT pg_notify('broker_access', '')"
           " WHERE EXISTS (SELECT 1 FROM broker_live_access)")


@dataclass(frozen=True)
class Queued:
    """A queued change and the row ids it came from (a device's later row supersedes earlier)."""

    ids: list[int]
    change: Change


def queue_grants(conn: psycopg.Connection, grants: Iterable[tuple[str, str]]) -> None:
    """Queue logins for (device_id, secret) pairs just issued to active devices (gateways
    found by their kind)."""
    pairs = list(grants)
    if not pairs:
        return
    conn.execute(
        "INSERT INTO broker_access_queue (device_id, action, secret, gateway)"
        " SELECT g.device_id, 'grant', g.secret, d.kind = 'gateway'"
        " FROM unnest(%s::text[], %s::text[]) AS g(device_id, secret)"
        " JOIN devices d USING (device_id) WHERE d.lifecycle = 'active'"
        "  AND EXISTS (SELECT 1 FROM broker_live_access)",
        ([device_id for device_id, _ in pairs], [secret for _, secret in pairs]))
    conn.execute(_NOTIFY)


def queue_revokes(conn: psycopg.Connection, device_ids: Sequence[str]) -> None:
    """Queue the end of these devices' logins (before a removed device's row goes)."""
    conn.execute(
        "INSERT INTO broker_access_queue (device_id, action, gateway)"
        " SELECT r.device_id, 'revoke', coalesce(d.kind = 'gateway', false)"
        " FROM unnest(%s::text[]) AS r(device_id) LEFT JOIN devices d USING (device_id)"
        " WHERE EXISTS (SELECT 1 FROM broker_live_access)", (list(device_ids),))
    conn.execute(_NOTIFY)


def queue_kind_changes(conn: psycopg.Connection, kinds: Iterable[tuple[str, str]]) -> None:
    """Before devices take these (device_id, kind) pairs: queue a role change for each
    active one with a login that becomes a gateway or stops being one."""
    pairs = list(kinds)
    if not pairs:
        return
    conn.execute(
        "INSERT INTO broker_access_queue (device_id, action, gateway)"
        " SELECT k.device_id, 'role', k.kind = 'gateway'"
        " FROM unnest(%s::text[], %s::text[]) AS k(device_id, kind)"
        " JOIN devices d USING (device_id) WHERE d.lifecycle = 'active'"
        "  AND d.secret_hash IS NOT NULL AND (d.kind = 'gateway') <> (k.kind = 'gateway')"
        "  AND EXISTS (SELECT 1 FROM broker_live_access)",
        ([device_id for device_id, _ in pairs], [kind for _, kind in pairs]))
    conn.execute(_NOTIFY)


def set_live_access(conn: psycopg.Connection, on: bool) -> None:
    """Switch queueing on (a broker with the plugin) or off (files), dropping what is queued."""
    with conn.transaction():
        if on:
            conn.execute("INSERT INTO broker_live_access DEFAULT VALUES ON CONFLICT DO NOTHING")
        else:
            conn.execute("DELETE FROM broker_live_access")
            conn.execute("DELETE FROM broker_access_queue")


def take(conn: psycopg.Connection, devices: int) -> list[Queued]:
    """What is queued for the `devices` devices changed most recently, one change each (what
    its rows come to). Newest first, so that one device added or retired during a bulk
    import of thousands waits for one control message, not for the whole import."""
    rows = conn.execute(
        "WITH picked AS (SELECT device_id, max(id) AS last FROM broker_access_queue"
        "  GROUP BY device_id ORDER BY last DESC LIMIT %s)"
        " SELECT q.id, q.device_id, q.action, q.secret, q.gateway"
        " FROM broker_access_queue q JOIN picked USING (device_id) ORDER BY q.id",
        (devices,)).fetchall()
    latest: dict[str, Queued] = {}
    for row_id, device_id, action, secret, gateway in rows:
        earlier = latest.pop(device_id, None)
        change: Change = (Grant(device_id, secret, gateway) if action == "grant"
                          else Role(device_id, gateway) if action == "role"
                          else Revoke(device_id, gateway))
        change = superseding(earlier.change if earlier else None, change)
        latest[device_id] = Queued([*(earlier.ids if earlier else []), row_id], change)
    return list(latest.values())


def done(conn: psycopg.Connection, ids: Sequence[int]) -> None:
    """Forget applied changes (and the secrets they held)."""
    conn.execute("DELETE FROM broker_access_queue WHERE id = ANY(%s)", (list(ids),))


def queued_device_ids(conn: psycopg.Connection) -> set[str]:
    """Devices with a change still waiting."""
    return {device_id for (device_id,) in conn.execute(
        "SELECT DISTINCT device_id FROM broker_access_queue")}


def granted_device_ids(conn: psycopg.Connection) -> set[str]:
    """Devices the registry lets log in: active, with a secret."""
    return {device_id for (device_id,) in conn.execute(
        "SELECT device_id FROM devices WHERE lifecycle = 'active' AND secret_hash IS NOT NULL")}
