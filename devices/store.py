"""The device registry in PostgreSQL (adapter): upsert, list, show, retire, remove, secrets,
approval, and the device lists of the API.

Every write takes one advisory lock, so "is this device new, does it have a secret" is
answered and acted on without a race, and every write leaves a row in `device_changes`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from devices.access_queue import queue_grants, queue_kind_changes, queue_revokes
from devices.catalogue import KINDS
from devices.credentials import generate_secret, hash_secret
from devices.registry import (
    FILTER_COLUMNS,
    DeviceConflict,
    DeviceFilter,
    DeviceInvalid,
    DeviceNotFound,
    DeviceRecord,
    DeviceView,
    ImportResult,
    PendingDevice,
)
from devices.registry_csv import COLUMNS, GATEWAY_KIND, DeviceRow
from ground.principal import Principal

REGISTRY_LOCK = 0x5245_4749  # "REGI": an arbitrary constant shared by every registry writer
# A device's history, deleted by `remove --purge`; tables that do not exist (yet) are skipped.
# The rollups (tables, or TimescaleDB continuous aggregates) go through
# village_forget_device_rollups, which reaches the aggregates' materialized rows.
HISTORY_TABLES = ("readings", "events", "device_presence", "dead_letters", "pending_devices",
                  "latest_values", "device_status_changes", "device_status_recorded")
_RECORD_COLUMNS = COLUMNS + ("firmware", "lifecycle", "created_at", "updated_at", "retired_at")
_TEMP_TYPES = {"latitude": "double precision", "longitude": "double precision",
               "installed_on": "date", "tags": "jsonb"}


def _lock(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK,))


def _log(conn: psycopg.Connection, device_ids: Sequence[str], action: str, actor: str,
         detail: Mapping[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO device_changes (device_id, action, actor, detail)"
        " SELECT unnest(%s::text[]), %s, %s, %s::jsonb",
        (list(device_ids), action, actor, json.dumps(detail or {}, ensure_ascii=False)))


def _upsert_sql(present: Sequence[str]) -> sql.Composed:
    names = [*present, "secret_hash"]
    updated = [name for name in present if name != "device_id"]
    old = sql.SQL(", ").join(sql.SQL("d.{}").format(sql.Identifier(n)) for n in updated)
    new = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in updated)
    sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n))
                              for n in updated)
    return sql.SQL(
        "WITH upserted AS ("
        " INSERT INTO devices AS d ({cols}, secret_issued_at)"
        " SELECT {cols}, CASE WHEN secret_hash IS NOT NULL THEN now() END FROM registry_import"
        " ON CONFLICT (device_id) DO UPDATE SET {sets},"
        "  secret_hash = coalesce(d.secret_hash, EXCLUDED.secret_hash),"
        "  secret_issued_at = coalesce(d.secret_issued_at, EXCLUDED.secret_issued_at),"
        "  updated_at = now()"
        " WHERE ({old}, d.secret_hash) IS DISTINCT FROM"
        "  ({new}, coalesce(d.secret_hash, EXCLUDED.secret_hash))"
        " RETURNING device_id, xmax = 0 AS inserted)"
        " INSERT INTO device_changes (device_id, action, actor, detail)"
        " SELECT device_id, CASE WHEN inserted THEN 'created' ELSE 'updated' END, %s, %s::jsonb"
        " FROM upserted RETURNING action"
    ).format(cols=sql.SQL(", ").join(map(sql.Identifier, names)), sets=sets, old=old, new=new)


def _copy_value(row: DeviceRow, column: str) -> object:
    value = getattr(row, column)
    return json.dumps(dict(value), ensure_ascii=False) if column == "tags" else value


def upsert_devices(conn: psycopg.Connection, rows: Sequence[DeviceRow], columns: Sequence[str],
                   actor: str, issue_secrets: bool, source: str = "import") -> ImportResult:
    """Insert new devices and update known ones in place (only the given columns).

    With `issue_secrets`, every device of `rows` that has no secret yet gets one, returned
    once in the result; only its hash is stored.
    """
    present = [name for name in COLUMNS if name in columns]
    with conn.transaction():
        _lock(conn)
        ids = [row.device_id for row in rows]
        has_secret: dict[str, bool] = dict(conn.execute(
            "SELECT device_id, secret_hash IS NOT NULL FROM devices WHERE device_id = ANY(%s)",
            (ids,)).fetchall())
        lacking = [device_id for device_id in ids if not has_secret.get(device_id, False)]
        secrets = [(device_id, generate_secret()) for device_id in lacking] if issue_secrets else []
        hashes = {device_id: hash_secret(secret) for device_id, secret in secrets}
        if "kind" in present:  # before the upsert: the queue compares with the stored kind
            queue_kind_changes(conn, [(row.device_id, row.kind) for row in rows])
        conn.execute("DROP TABLE IF EXISTS pg_temp.registry_import")
        conn.execute(sql.SQL("CREATE TEMP TABLE registry_import ({}, secret_hash text)"
                             " ON COMMIT DROP").format(sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(_TEMP_TYPES.get(name, "text")))
            for name in present)))
        with conn.cursor().copy(sql.SQL("COPY registry_import ({}) FROM STDIN").format(
                sql.SQL(", ").join(map(sql.Identifier, [*present, "secret_hash"])))) as copy:
            for row in rows:
                copy.write_row([*(_copy_value(row, name) for name in present),
                                hashes.get(row.device_id)])
        actions = [action for (action,) in conn.execute(
            _upsert_sql(present), (actor, json.dumps({"source": source}))).fetchall()]
        if secrets:
            _log(conn, [device_id for device_id, _ in secrets], "secret_issued", actor)
            queue_grants(conn, secrets)
        _check_gateways(conn)
    created = actions.count("created")
    updated = len(actions) - created
    return ImportResult(created=created, updated=updated,
                        unchanged=len(rows) - created - updated, secrets=secrets,
                        without_secret=[] if issue_secrets else lacking)


def _check_gateways(conn: psycopg.Connection) -> None:
    # A file may turn a stored gateway into a meter while stored devices still hang off it.
    broken = conn.execute(
        "SELECT c.device_id, c.gateway_id, c.kind FROM devices c"
        " JOIN devices g ON g.device_id = c.gateway_id"
        " WHERE g.kind <> %s OR c.kind = %s ORDER BY c.device_id LIMIT 3",
        (GATEWAY_KIND, GATEWAY_KIND)).fetchall()
    if broken:
        faults = "; ".join(
            f"{child} is a gateway with a gateway_id ({gateway})" if kind == GATEWAY_KIND
            else f"{child} would hang off {gateway}, which would no longer be a gateway"
            for child, gateway, kind in broken)
        raise DeviceConflict(f"{faults}; nothing changed")


def gateway_ids(conn: psycopg.Connection, active_only: bool = False) -> set[str]:
    """The ids of registered gateways (only active ones if asked)."""
    query = "SELECT device_id FROM devices WHERE kind = %s"
    query += " AND lifecycle = 'active'" if active_only else ""
    return {device_id for (device_id,) in conn.execute(query, (GATEWAY_KIND,))}


def _where(filters: Mapping[str, str]) -> tuple[sql.Composable, list[str]]:
    unknown = [name for name in filters if name not in FILTER_COLUMNS]
    if unknown:
        raise DeviceInvalid(f"cannot filter on {unknown[0]!r}")
    if not filters:
        return _NOTHING, []
    clauses = sql.SQL(" AND ").join(sql.SQL("d.{} = %s").format(sql.Identifier(name))
                                    for name in filters)
    return sql.SQL(" WHERE ") + clauses, list(filters.values())


def _record(values: Sequence[Any]) -> DeviceRecord:
    fields = dict(zip(_RECORD_COLUMNS, values, strict=False))
    row = DeviceRow(**{name: fields[name] for name in COLUMNS})
    return DeviceRecord(row=row, firmware=fields["firmware"], lifecycle=fields["lifecycle"],
                        created_at=fields["created_at"], updated_at=fields["updated_at"],
                        retired_at=fields["retired_at"], has_secret=values[-1])


_NOTHING = sql.SQL("")


def _select(where: sql.Composable, tail: sql.Composable = _NOTHING) -> sql.Composed:
    # The firmware a device last reported wins over the one the registry was told.
    columns = [sql.SQL("coalesce(p.firmware, d.firmware)") if name == "firmware"
               else sql.SQL("d.{}").format(sql.Identifier(name)) for name in _RECORD_COLUMNS]
    return sql.SQL(
        "SELECT {}, d.secret_hash IS NOT NULL FROM devices d"
        " LEFT JOIN device_presence p ON p.device_id = d.device_id{}{}"
    ).format(sql.SQL(", ").join(columns), where, tail)


def iter_devices(conn: psycopg.Connection, filters: Mapping[str, str] | None = None,
                 limit: int | None = None) -> Iterator[DeviceRecord]:
    """Devices matching every filter (column = value), ordered by id, streamed."""
    where, params = _where(filters or {})
    tail = sql.SQL(" ORDER BY d.device_id") + (
        sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit is not None else _NOTHING)
    with conn.transaction(), conn.cursor(name="registry_devices") as cursor:
        cursor.execute(_select(where, tail), params)
        yield from map(_record, cursor)


def count_devices(conn: psycopg.Connection, filters: Mapping[str, str] | None = None) -> int:
    """How many devices match every filter."""
    where, params = _where(filters or {})
    row = conn.execute(sql.SQL("SELECT count(*) FROM devices d") + where, params).fetchone()
    return int(row[0]) if row else 0


def get_device(conn: psycopg.Connection, device_id: str) -> DeviceRecord:
    """One device; DeviceNotFound if it is not registered."""
    row = conn.execute(_select(sql.SQL(" WHERE d.device_id = %s")), (device_id,)).fetchone()
    if row is None:
        raise DeviceNotFound(f"{device_id!r} is not registered")
    return _record(row)


def presence(conn: psycopg.Connection, device_id: str) -> dict[str, Any]:
    """What `device_status` says of a device: last seen, reported state, online, address."""
    row = conn.execute("SELECT last_seen, reported_state, online, ip FROM device_status"
                       " WHERE device_id = %s", (device_id,)).fetchone()
    return dict(zip(("last_seen", "reported_state", "online", "ip"), row or (), strict=False))


def recent_changes(conn: psycopg.Connection, device_id: str, limit: int = 10,
                   ) -> list[tuple[datetime, str, str, dict[str, Any]]]:
    """The latest changes to a device: (when, action, who, detail), newest first."""
    return [tuple(row) for row in conn.execute(
        "SELECT at, action, actor, detail FROM device_changes WHERE device_id = %s"
        " ORDER BY at DESC, id DESC LIMIT %s", (device_id, limit))]


def add_device(conn: psycopg.Connection, row: DeviceRow, actor: str, source: str = "add",
               ) -> str:
    """Register one new device and return its secret (shown once); refuse a known id."""
    with conn.transaction():
        _lock(conn)
        if conn.execute("SELECT 1 FROM devices WHERE device_id = %s",
                        (row.device_id,)).fetchone():
            raise DeviceConflict(f"{row.device_id!r} is already registered (import updates it)",
                                 field="device_id")
        result = upsert_devices(conn, [row], COLUMNS, actor, issue_secrets=True, source=source)
    return result.secrets[0][1]


def retire_device(conn: psycopg.Connection, device_id: str, actor: str) -> None:
    """Mark a device retired: its history stays, its messages and broker login do not."""
    with conn.transaction():
        _lock(conn)
        found = conn.execute(
            "UPDATE devices SET lifecycle = 'retired', retired_at = now(), updated_at = now()"
            " WHERE device_id = %s AND lifecycle = 'active' RETURNING 1", (device_id,)).fetchone()
        if found is None:
            get_device(conn, device_id)  # raises if unknown
            raise DeviceConflict(f"{device_id!r} is already retired")
        _log(conn, [device_id], "retired", actor)
        queue_revokes(conn, [device_id])


def rotate_secret(conn: psycopg.Connection, device_id: str, actor: str) -> str:
    """Issue a new secret for a device and return it (shown once); the old one stops working
    within seconds with live access, else at the next `broker-config --reload`."""
    secret = generate_secret()
    with conn.transaction():
        _lock(conn)
        found = conn.execute(
            "UPDATE devices SET secret_hash = %s, secret_issued_at = now(), updated_at = now()"
            " WHERE device_id = %s RETURNING 1", (hash_secret(secret), device_id)).fetchone()
        if found is None:
            raise DeviceNotFound(f"{device_id!r} is not registered")
        _log(conn, [device_id], "secret_issued", actor, {"rotated": True})
        queue_grants(conn, [(device_id, secret)])
    return secret


def _history_tables(conn: psycopg.Connection) -> list[str]:
    found = conn.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
        " AND oid = ANY(ARRAY(SELECT to_regclass(name) FROM unnest(%s::text[]) AS name))",
        (list(HISTORY_TABLES),))
    existing = {name for (name,) in found}
    return [name for name in HISTORY_TABLES if name in existing]


def remove_device(conn: psycopg.Connection, device_id: str, actor: str) -> dict[str, int]:
    """Delete a device and its whole history; return the rows deleted per table."""
    deleted: dict[str, int] = {}
    with conn.transaction():
        _lock(conn)
        get_device(conn, device_id)
        queue_revokes(conn, [device_id])
        for table in _history_tables(conn):
            cursor = conn.execute(sql.SQL("DELETE FROM {} WHERE device_id = %s").format(
                sql.Identifier(table)), (device_id,))
            deleted[table] = cursor.rowcount
        rollups = conn.execute("SELECT village_forget_device_rollups(%s)", (device_id,)).fetchone()
        deleted["rollups"] = int(rollups[0]) if rollups else 0
        conn.execute("DELETE FROM devices WHERE device_id = %s", (device_id,))
        deleted["devices"] = 1
        _log(conn, [device_id], "removed", actor, {"deleted": deleted})
    return deleted


def pending_devices(conn: psycopg.Connection) -> list[PendingDevice]:
    """Unknown devices heard in discovery mode, most recently heard first."""
    return [PendingDevice(*row) for row in conn.execute(
        "SELECT device_id, first_seen, last_seen, last_topic, messages FROM pending_devices"
        " ORDER BY last_seen DESC NULLS LAST, device_id")]


def approve_device(conn: psycopg.Connection, row: DeviceRow, actor: str) -> str:
    """Register a pending device with its kind and place; return its secret (shown once)."""
    with conn.transaction():
        _lock(conn)
        if conn.execute("DELETE FROM pending_devices WHERE device_id = %s RETURNING 1",
                        (row.device_id,)).fetchone() is None:
            raise DeviceNotFound(f"{row.device_id!r} is not pending (see `village devices pending`)")
        secret = add_device(conn, row, actor, source="approve")
        _log(conn, [row.device_id], "approved", actor)
    return secret


def sync_catalogue(conn: psycopg.Connection) -> None:
    """Mirror the code's kind catalogue into `device_kinds` and `metrics`."""
    for kind in KINDS:
        conn.execute(
            "INSERT INTO device_kinds VALUES (%s, %s, %s, %s) ON CONFLICT (kind) DO UPDATE"
            " SET label_zh = excluded.label_zh, label_en = excluded.label_en,"
            " stale_after_s = excluded.stale_after_s",
            (kind.name, kind.label_zh, kind.label_en, kind.stale_after_s),
        )
        conn.execute("DELETE FROM metrics WHERE kind = %s", (kind.name,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO metrics VALUES (%s, %s, %s, %s, %s, %s)",
                [(kind.name, m.name, m.unit, m.description, m.minimum, m.maximum)
                 for m in kind.metrics],
            )


_VIEW = sql.SQL(
    "SELECT d.device_id, d.kind, d.name, d.township, d.village, d.grid, d.site, d.latitude,"
    " d.longitude, d.installed_on, coalesce(s.firmware, d.firmware) AS firmware, d.gateway_id,"
    " d.tags, d.lifecycle, coalesce(s.online, false) AS online, s.last_seen, d.created_at,"
    " d.updated_at, d.retired_at"
    " FROM devices d LEFT JOIN device_status s ON s.device_id = d.device_id"
)


def scope_conditions(principal: Principal, alias: str, equal: Mapping[str, Any],
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


def device_views(conn: psycopg.Connection, principal: Principal, where: DeviceFilter,
                 after: str | None, limit: int) -> list[DeviceView]:
    """Devices in scope matching the filter, ordered by id, after the `after` id."""
    columns = ("kind", "township", "village", "grid", "site", "lifecycle")
    condition, params = scope_conditions(principal, "d", {c: getattr(where, c) for c in columns},
                                         after)
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
    query = sql.SQL("{} WHERE {} ORDER BY d.device_id LIMIT %s").format(_VIEW, condition)
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        cur.execute(query, [*params, limit])
        return cur.fetchall()


def device_view(conn: psycopg.Connection, device_id: str) -> DeviceView | None:
    """One device by id (whatever its scope: the caller checks it)."""
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        cur.execute(sql.SQL("{} WHERE d.device_id = %s").format(_VIEW), (device_id,))
        return cur.fetchone()


def places_of(conn: psycopg.Connection, device_ids: Sequence[str]) -> list[tuple[str | None, str]]:
    """(township, village) of each of these devices that is registered."""
    return conn.execute("SELECT township, village FROM devices WHERE device_id = ANY(%s)",
                        (list(device_ids),)).fetchall()
