"""The time pass against the database: the registry and presence as columns, judged by
`alerting.columnar` (adapter).

The columns stay in the service between passes, and each pass reads only the registry and
presence rows written since the previous one, by their change marks (migration 0013: the
id of the transaction that last wrote the row). A pass keeps what the snapshot it read with
could not see: the transactions still running then (its xip list) and every one begun after
(ids from its xmax). A row the read missed carries one of those marks, so the next pass reads
it, however long its writer stayed open; a long transaction that wrote no such row (a
rollup, another database's) costs nothing. Everything is read again on the first pass, every FULL_READ_S, and when the registry lost
a device (a delete leaves no row to mark).

Its own module, imported only where the alerting service runs: numpy stays out of the
other processes, since the CLI imports the alerting runner for every command.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import compress
from typing import Any, NamedTuple

import numpy as np
import psycopg

from alerting import store
from alerting.columnar import (
    EPOCH,
    NEVER,
    PLACES,
    Column,
    Fleet,
    Micros,
    PresenceColumns,
    evaluate_tick_columns,
    micros,
)
from alerting.cycles import Engine
from alerting.evaluate import Outcome
from devices import status_history_store
from devices.status_history import StatusChange, after_silence

# A safety net, not a need: writes that bypass the triggers (a restore, a replica's apply).
FULL_READ_S = 900.0

# Times as microseconds since the epoch, NEVER ('-9223372036854775808') where none.
# date_part()'s float8 seconds, times a million, round back to the exact microsecond until
# 2106 (two roundings, under half a microsecond together) at half the cost of extract()'s
# numeric.
_DEVICES = (
    "SELECT device_id, kind, township, village, grid, site, gateway_id,"
    " CASE WHEN tags <> '{}' THEN tags END,"  # most have none: no JSON to decode
    " (date_part('epoch', created_at) * 1000000)::bigint, lifecycle = 'active' FROM devices")
# A Last Will counts from when it came (else from the last message).
_PRESENCE = (
    "SELECT device_id, coalesce((date_part('epoch', last_seen) * 1000000)::bigint,"
    " '-9223372036854775808'), coalesce((date_part('epoch', CASE WHEN reported_state ="
    " 'offline' THEN coalesce(state_changed_at, last_seen) END) * 1000000)::bigint,"
    " '-9223372036854775808') FROM device_presence")


_UNSEEN = " (changed_xid >= %s::text::xid8 OR changed_xid = ANY(%s::text[]::xid8[]))"


class Unseen(NamedTuple):
    """What a snapshot could not see: transactions from `xmax` on, and those in `running`."""

    xmax: str
    running: list[str]


@dataclass(frozen=True)
class TickColumns:
    """The registry and presence as the service holds them between passes."""

    fleet: Fleet
    created: Micros  # when each row was registered: a device never heard is silent since
    heard: Micros  # its presence's last message (NEVER: none)
    offline: Micros  # when it said it went offline (NEVER: it did not)
    unseen: Unseen  # what the snapshot these were read with could not see
    read_all_at: float  # monotonic time of the last full read

    def presence(self) -> PresenceColumns:
        """Presence as the time pass judges it."""
        return PresenceColumns(np.where(self.heard == NEVER, self.created, self.heard),
                               self.offline)


def tick_cycle(conn: psycopg.Connection, engine: Engine, now: datetime) -> Outcome:
    """Conditions of time at `now`: stopped reporting, area outages, events gone quiet.

    Over columns: a fleet of a million is a few arrays, not a million objects; tests prove
    it decides what `evaluate_tick` decides. Devices silent past their kind's limit also go
    offline in the status history.
    """
    columns = read_columns(conn, engine.cache.tick)
    engine.cache.tick = columns
    fleet, presence = columns.fleet, columns.presence()
    with conn.transaction():
        states = store.load_states(conn)
        stale = store.stale_after(conn)
        outcome = evaluate_tick_columns(engine.book, fleet, presence, stale, states, now)
        store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
        status_history_store.record(conn, gone_silent(conn, fleet, presence, stale, now))
    return outcome


def read_columns(conn: psycopg.Connection, held: TickColumns | None,
                 full_read_s: float = FULL_READ_S) -> TickColumns:
    """The columns now: `held` brought up to date with what changed since it was read, or
    all read again. One snapshot for every read, so the marks and the rows agree."""
    with conn.transaction(), conn.cursor(binary=True) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = cur.execute(
            "SELECT pg_snapshot_xmax(s)::text, array(SELECT pg_snapshot_xip(s)::text)"
            " FROM (SELECT pg_current_snapshot() AS s) AS now").fetchone()
        assert row is not None
        unseen = Unseen(row[0], row[1])
        if held is None or time.monotonic() - held.read_all_at > full_read_s:
            return _read_all(cur, unseen)
        changed = cur.execute(_DEVICES + " WHERE" + _UNSEEN, held.unseen).fetchall()
        columns, unheard = _with_registry_changes(held, changed) if changed else (held, [])
        active = cur.execute("SELECT count(*) FROM devices WHERE lifecycle = 'active'"
                             ).fetchone()
        if active is None or active[0] != len(columns.fleet):
            return _read_all(cur, unseen)  # a device was deleted: no row says which
        found = cur.execute(_PRESENCE + " WHERE" + _UNSEEN + " OR device_id = ANY(%s)",
                            (*held.unseen, unheard)).fetchall()
        heard, offline = columns.heard.copy(), columns.offline.copy()
        _put_presence(columns.fleet, heard, offline, found)
        return TickColumns(columns.fleet, columns.created, heard, offline, unseen,
                           held.read_all_at)


def _read_all(cur: psycopg.Cursor[Any], unseen: Unseen) -> TickColumns:
    devices = cur.execute(_DEVICES + " WHERE lifecycle = 'active'").fetchall()
    fleet, created = _fleet(devices)
    del devices
    found = cur.execute(_PRESENCE).fetchall()
    heard = np.full(len(fleet), NEVER, dtype=np.int64)
    offline = np.full(len(fleet), NEVER, dtype=np.int64)
    _put_presence(fleet, heard, offline, found)
    return TickColumns(fleet, created, heard, offline, unseen, time.monotonic())


def _tags(found: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in found.items())) if found else ()


def _labels(devices: Sequence[tuple[Any, ...]]) -> dict[str, list[str | None]]:
    """Each place column of registry rows; a gateway without one is its own gateway."""
    labels = {name: [r[i] for r in devices] for i, name in enumerate(PLACES[:-1], start=1)}
    labels["gateway"] = [r[6] or (r[0] if r[1] == "gateway" else None) for r in devices]
    return labels


def _fleet(devices: Sequence[tuple[Any, ...]]) -> tuple[Fleet, Micros]:
    fleet = Fleet.of_columns([r[0] for r in devices], _labels(devices),
                             [_tags(r[7]) for r in devices])
    return fleet, np.fromiter((r[8] for r in devices), dtype=np.int64, count=len(devices))


def _put_presence(fleet: Fleet, heard: Micros, offline: Micros,
                  found: Sequence[tuple[str, int, int]]) -> None:
    """Presence rows into the fleet's rows (a device not in the fleet is not judged)."""
    row_of = fleet.rows.get
    rows = np.fromiter((row_of(r[0], -1) for r in found), dtype=np.int64, count=len(found))
    known = rows >= 0
    heard[rows[known]] = np.fromiter((r[1] for r in found), dtype=np.int64,
                                     count=len(found))[known]
    offline[rows[known]] = np.fromiter((r[2] for r in found), dtype=np.int64,
                                       count=len(found))[known]


def _with_registry_changes(held: TickColumns, changed: Sequence[tuple[Any, ...]]
                           ) -> tuple[TickColumns, list[str]]:
    """The columns with the changed registry rows: each changed device leaves its row and,
    if still active, comes back at the end with its new place (its presence kept); also the
    ids never held, whose presence is still to read."""
    fleet, rows = held.fleet, held.fleet.rows
    keep = np.ones(len(fleet), dtype=bool)
    keep[[rows[r[0]] for r in changed if r[0] in rows]] = False
    back = [r for r in changed if r[9]]
    old = np.array([rows.get(r[0], -1) for r in back], dtype=np.int64)

    def joined(column: Micros, fresh: Micros) -> Micros:
        return np.concatenate((column[keep], np.where(old >= 0, column[old], fresh)))

    columns = {name: _joined_column(fleet.columns[name], keep, labels)
               for name, labels in _labels(back).items()}
    tag_index = {tags: code for code, tags in enumerate(fleet.tag_sets)}
    tag_codes = [tag_index.setdefault(_tags(r[7]), len(tag_index)) for r in back]
    new = Fleet([*compress(fleet.device_ids, keep.tolist()), *(r[0] for r in back)], columns,
                np.concatenate((fleet.tag_codes[keep], np.array(tag_codes, dtype=np.int32))),
                tuple(tag_index))
    never = np.full(len(back), NEVER, dtype=np.int64)
    created = np.fromiter((r[8] for r in back), dtype=np.int64, count=len(back))
    unheard = [r[0] for r, at in zip(back, old.tolist(), strict=True) if at < 0]
    return TickColumns(new, joined(held.created, created), joined(held.heard, never),
                       joined(held.offline, never), held.unseen, held.read_all_at), unheard


def _joined_column(column: Column, keep: np.ndarray, labels: Sequence[str | None]) -> Column:
    """The kept rows' codes, then the labels' (new labels get new codes)."""
    index = {label: code for code, label in enumerate(column.values)}
    codes = [index.setdefault(label, len(index)) for label in labels]
    return Column(np.concatenate((column.codes[keep], np.array(codes, dtype=np.int32))),
                  tuple(index))


def gone_silent(conn: psycopg.Connection, fleet: Fleet, presence: PresenceColumns,
                stale_after_s: Mapping[str, float], now: datetime) -> list[StatusChange]:
    """Devices recorded online whose silence has passed their kind's limit by `now`.

    The columns pick the few silent rows first, so only those become Python objects."""
    kinds = fleet.columns["kind"]
    limit_of_kind = [stale_after_s.get(kind or "", np.inf) for kind in kinds.values]
    limit = np.array(limit_of_kind, dtype=np.float64)[kinds.codes]
    heard = presence.last_seen != NEVER
    silent = np.flatnonzero(heard & ((micros(now) - presence.last_seen) / 1e6 >= limit))
    silent_ids = {fleet.device_ids[row]: row for row in silent.tolist()}
    # Only the silent rows are asked about: every pass, not the whole fleet's recorded state.
    online = status_history_store.recorded_online(conn, list(silent_ids)) if silent_ids else []
    last_seen = {d: EPOCH + timedelta(microseconds=int(presence.last_seen[silent_ids[d]]))
                 for d in online}
    limits = {d: float(limit[silent_ids[d]]) for d in online}
    return after_silence(online, last_seen, limits, now)
