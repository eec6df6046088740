"""The time pass against the database: the registry and presence as columns, judged by
`alerting.columnar` (adapter).

Its own module, imported only where the alerting service runs: numpy stays out of the
other processes, since the CLI imports the alerting runner for every command.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import psycopg

from alerting import store
from alerting.columnar import EPOCH, NEVER, Fleet, PresenceColumns, evaluate_tick_columns, micros
from alerting.cycles import Engine
from alerting.evaluate import Outcome
from devices import status_history_store
from devices.status_history import StatusChange, after_silence


def tick_cycle(conn: psycopg.Connection, engine: Engine, now: datetime) -> Outcome:
    """Conditions of time at `now`: stopped reporting, area outages, events gone quiet.

    Over columns: a fleet of a million is a few arrays, not a million objects; tests prove
    it decides what `evaluate_tick` decides. Devices silent past their kind's limit also go
    offline in the status history.
    """
    with conn.transaction():
        fleet = registry_columns(conn, engine)
        states = store.load_states(conn)
        presence, stale = presence_columns(conn, fleet), store.stale_after(conn)
        outcome = evaluate_tick_columns(engine.book, fleet, presence, stale, states, now)
        store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
        status_history_store.record(conn, gone_silent(conn, fleet, presence, stale, now))
    return outcome


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


def registry_columns(conn: psycopg.Connection, engine: Engine) -> Fleet:
    """The cached registry as columns (kind, place and tag codes), built after each reload."""
    subjects = engine.registry(conn)
    if engine.cache.columns is None:
        engine.cache.columns = Fleet.of(subjects.values())
    return engine.cache.columns


def presence_columns(conn: psycopg.Connection, fleet: Fleet) -> PresenceColumns:
    """When each device of the fleet was last heard, and when it reported itself offline,
    in microseconds since the epoch (NEVER where not); rows in the fleet's order."""
    last_seen = np.full(len(fleet), NEVER, dtype=np.int64)
    offline_at = np.full(len(fleet), NEVER, dtype=np.int64)
    row_of = fleet.rows.get
    # A device never heard counts its silence from when it was registered. date_part()'s
    # float8 seconds, times a million, round back to the exact microsecond until 2106 (two
    # roundings, under half a microsecond together) at half the cost of extract()'s numeric.
    with conn.cursor(binary=True) as cur:
        found = cur.execute(
            "SELECT d.device_id, (date_part('epoch', coalesce(p.last_seen, d.created_at))"
            "  * 1000000)::bigint,"
            " (date_part('epoch', CASE WHEN p.reported_state = 'offline'"
            "  THEN coalesce(p.state_changed_at, p.last_seen) END) * 1000000)::bigint"
            " FROM devices d LEFT JOIN device_presence p USING (device_id)"
            " WHERE d.lifecycle = 'active'").fetchall()
    for device_id, seen, offline in found:
        row = row_of(device_id)
        if row is not None:  # registered since the fleet was loaded: the next pass
            last_seen[row] = seen
            if offline is not None:
                offline_at[row] = offline
    return PresenceColumns(last_seen, offline_at)
