"""The time pass against the database: the registry and presence as columns, judged by
`alerting.columnar` (adapter).

The columns stay in the service between passes, and each pass reads only the registry and
presence rows written since the previous one, by their change marks (migration 0013: the
id of the transaction that last wrote the row). A pass keeps what the snapshot it read with
could not see: the transactions still running then (its xip list) and every one begun after
(ids from its xmax). A row the read missed carries one of those marks, so the next pass
reads it, however long its writer stayed open; a long transaction that wrote no such row
(a rollup, another database's) costs nothing. Everything is read again on the first pass,
every FULL_READ_S, and when the registry lost a device (a delete leaves no row to mark).

Its own module, imported only where the alerting service runs: numpy stays out of the
other processes, since the CLI imports the alerting runner for every command.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import compress
from typing import Any, NamedTuple

import numpy as np
import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from alerting import store
from alerting.columnar import (
    EPOCH,
    NEVER,
    PLACES,
    Codes,
    Column,
    Fleet,
    Micros,
    PresenceColumns,
    evaluate_tick_columns,
    micros,
)
from alerting.cycles import Cache, Engine
from alerting.evaluate import Outcome
from devices import status_history_store
from devices.status_history import StatusChange, after_silence

# A safety net, not a need: writes that bypass the triggers (a restore, a replica's apply).
FULL_READ_S = 900.0

# Times as microseconds since the epoch, NEVER ('-9223372036854775808') where none.
# date_part()'s float8 seconds, times a million, round back to the exact microsecond until
# 2106 (two roundings, under half a microsecond together) at half the cost of extract()'s
# numeric. A Last Will counts from when it came (else from the last message).
_DEVICE = sql.SQL(
    "d.device_id, d.kind, d.township, d.village, d.grid, d.site, d.gateway_id,"
    " CASE WHEN d.tags <> '{}' THEN d.tags END,"  # most have none: no JSON to decode
    " (date_part('epoch', d.created_at) * 1000000)::bigint, d.lifecycle = 'active'")
_PRESENCE = sql.SQL(
    "coalesce((date_part('epoch', p.last_seen) * 1000000)::bigint, '-9223372036854775808'),"
    " coalesce((date_part('epoch', CASE WHEN p.reported_state = 'offline'"
    " THEN coalesce(p.state_changed_at, p.last_seen) END) * 1000000)::bigint,"
    " '-9223372036854775808')")
_READ_ALL = sql.SQL("SELECT {}, {} FROM devices d LEFT JOIN device_presence p"
                    " USING (device_id) WHERE d.lifecycle = 'active'").format(_DEVICE, _PRESENCE)
_UNSEEN = sql.SQL("(changed_xid >= %s::text::xid8 OR changed_xid = ANY(%s::text[]::xid8[]))")
# With the active devices' count beside them, from the same snapshot (one row of NULLs and
# the count when nothing changed).
_CHANGED_DEVICES = sql.SQL(
    "SELECT {}, active.n FROM (SELECT count(*) AS n FROM devices WHERE lifecycle = 'active')"
    " AS active LEFT JOIN devices d ON {}").format(_DEVICE, _UNSEEN)
_CHANGED_PRESENCE = sql.SQL("SELECT p.device_id, {} FROM device_presence p WHERE {}"
                            " OR device_id = ANY(%s)").format(_PRESENCE, _UNSEEN)
_BATCH_ROWS = 50_000  # a full read holds this many rows as Python objects at most


class Unseen(NamedTuple):
    """What a snapshot could not see: transactions from `xmax` on, and those in `running`."""

    xmax: str
    running: list[str]


@dataclass(frozen=True)
class TickColumns:
    """The registry and presence as the service holds them between passes."""

    fleet: Fleet
    created: Micros  # when each row was registered (a device never heard is silent since)
    heard: Micros  # when its presence last heard it (NEVER: not)
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
    with engine.cache.refreshing:
        columns = refresh(conn, engine.cache)
    fleet, presence = columns.fleet, columns.presence()
    with conn.transaction():
        states = store.load_states(conn)
        stale = store.stale_after(conn)
        outcome = evaluate_tick_columns(engine.book, fleet, presence, stale, states, now)
        store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
        status_history_store.record(conn, gone_silent(conn, fleet, presence, stale, now))
    return outcome


def refresh(conn: psycopg.Connection, cache: Cache) -> TickColumns:
    """Bring the cache's columns up to date: what changed since they were read, or all of
    it on the first call, every FULL_READ_S and after a device was deleted."""
    # Nothing held while reading everything again: never two fleets in memory at once.
    held, cache.columns = cache.columns, None
    changed = None
    if held is not None and time.monotonic() - held.read_all_at <= FULL_READ_S:
        changed = read_changes(conn, held)
    held = None
    cache.columns = columns = changed or read_all(conn)
    cache.columns_read = time.monotonic()
    return columns


@contextmanager
def _snapshot(conn: psycopg.Connection) -> Iterator[tuple[psycopg.Cursor[Any], Unseen]]:
    """A read-only transaction of one snapshot, and what that snapshot cannot see.

    Inside a caller's transaction (the streaming pass's registry) each later statement sees
    a later snapshot than the one the marks come from: what it sees beyond them is read
    again next time, never missed."""
    outermost = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction(), conn.cursor(binary=True) as cur:
        if outermost:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = cur.execute(
            "SELECT pg_snapshot_xmax(s)::text, array(SELECT pg_snapshot_xip(s)::text)"
            " FROM (SELECT pg_current_snapshot() AS s) AS now").fetchone()
        assert row is not None
        yield cur, Unseen(row[0], row[1])


def read_all(conn: psycopg.Connection) -> TickColumns:
    """Every active device and its presence, as columns, in batches: the rows' objects
    never all at once."""
    ids: list[str] = []
    places = {name: _Codes() for name in PLACES}
    tags, created, heard, offline = _Codes(), array("q"), array("q"), array("q")
    with _snapshot(conn) as (cur, unseen), conn.cursor("tick_read_all", binary=True) as rows:
        rows.execute(_READ_ALL)
        while batch := rows.fetchmany(_BATCH_ROWS):
            ids.extend(r[0] for r in batch)
            for name, labels in _labels(batch).items():
                places[name].add(labels)
            tags.add(_tags(r[7]) for r in batch)
            created.extend(r[8] for r in batch)
            heard.extend(r[10] for r in batch)
            offline.extend(r[11] for r in batch)
    fleet = Fleet(ids, {name: codes.column() for name, codes in places.items()},
                  tags.array(), tuple(tags.index))
    return TickColumns(fleet, np.array(created), np.array(heard), np.array(offline), unseen,
                       time.monotonic())


def read_changes(conn: psycopg.Connection, held: TickColumns) -> TickColumns | None:
    """`held` brought up to date with the rows written since it was read; None when a
    device was deleted (no row says which: everything must be read again)."""
    with _snapshot(conn) as (cur, unseen):
        found_devices = cur.execute(_CHANGED_DEVICES, held.unseen).fetchall()
        changed = [r for r in found_devices if r[0] is not None]
        columns, reread = _with_registry_changes(held, changed) if changed else (held, [])
        if found_devices[0][-1] != len(columns.fleet):
            return None
        found = cur.execute(_CHANGED_PRESENCE, (*held.unseen, reread)).fetchall()
    row_of = columns.fleet.rows.get
    rows = np.fromiter((row_of(r[0], -1) for r in found), dtype=np.int64, count=len(found))
    known = rows >= 0  # a device not in the fleet (retired, unregistered) is not judged
    heard, offline = columns.heard.copy(), columns.offline.copy()
    heard[rows[known]] = np.fromiter((r[1] for r in found), dtype=np.int64,
                                     count=len(found))[known]
    offline[rows[known]] = np.fromiter((r[2] for r in found), dtype=np.int64,
                                       count=len(found))[known]
    return TickColumns(columns.fleet, columns.created, heard, offline, unseen,
                       held.read_all_at)


class _Codes:
    """A categorical column being built: labels in, codes out (a label's code is the order
    it first came in)."""

    def __init__(self, values: Sequence[Any] = ()) -> None:
        self.index: dict[Any, int] = {value: code for code, value in enumerate(values)}
        self.codes = array("i")

    def add(self, labels: Iterable[Any]) -> None:
        index = self.index
        self.codes.extend(index.setdefault(label, len(index)) for label in labels)

    def array(self) -> Codes:
        return np.array(self.codes, dtype=np.int32)

    def column(self) -> Column:
        return Column(self.array(), tuple(self.index))


def _tags(found: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in found.items())) if found else ()


def _labels(devices: Sequence[tuple[Any, ...]]) -> dict[str, list[str | None]]:
    """Each place column of registry rows; a gateway without one is its own gateway."""
    labels = {name: [r[i] for r in devices] for i, name in enumerate(PLACES[:-1], start=1)}
    labels["gateway"] = [r[6] or (r[0] if r[1] == "gateway" else None) for r in devices]
    return labels


def _with_registry_changes(held: TickColumns, changed: Sequence[tuple[Any, ...]]
                           ) -> tuple[TickColumns, list[str]]:
    """The columns with the changed registry rows: each changed device leaves its row and,
    if still active, comes back at the end with its new place; also their ids, whose
    presence is to be read again (one deleted and registered anew has none any more)."""
    fleet, rows = held.fleet, held.fleet.rows
    keep = np.ones(len(fleet), dtype=bool)
    keep[[rows[r[0]] for r in changed if r[0] in rows]] = False
    back = [r for r in changed if r[9]]
    never = np.full(len(back), NEVER, dtype=np.int64)

    def joined(column: Micros, fresh: Micros) -> Micros:
        return np.concatenate((column[keep], fresh))

    def joined_codes(before: Codes, values: Sequence[Any], labels: Iterable[Any]
                     ) -> tuple[Codes, tuple[Any, ...]]:
        codes = _Codes(values)
        codes.add(labels)
        return np.concatenate((before[keep], codes.array())), tuple(codes.index)

    columns = {name: Column(*joined_codes(fleet.columns[name].codes, fleet.columns[name].values,
                                          labels)) for name, labels in _labels(back).items()}
    tag_codes, tag_sets = joined_codes(fleet.tag_codes, fleet.tag_sets,
                                       (_tags(r[7]) for r in back))
    new = Fleet([*compress(fleet.device_ids, keep.tolist()), *(r[0] for r in back)], columns,
                tag_codes, tag_sets)
    created = np.fromiter((r[8] for r in back), dtype=np.int64, count=len(back))
    return TickColumns(new, joined(held.created, created), joined(held.heard, never),
                       joined(held.offline, never), held.unseen,
                       held.read_all_at), [r[0] for r in back]


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
