"""The time pass against the database: the registry and presence as columns, judged by
`alerting.columnar` (adapter).

Its own module, imported only where the alerting service runs: numpy stays out of the
other processes, since the CLI imports the alerting runner for every command.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import psycopg

from alerting import store
from alerting.columnar import NEVER, Fleet, PresenceColumns, evaluate_tick_columns
from alerting.cycles import Engine
from alerting.evaluate import Outcome


def tick_cycle(conn: psycopg.Connection, engine: Engine, now: datetime) -> Outcome:
    """Conditions of time at `now`: stopped reporting, area outages, events gone quiet.

    Over columns: a fleet of a million is a few arrays, not a million objects; tests prove
    it decides what `evaluate_tick` decides.
    """
    with conn.transaction():
        fleet = registry_columns(conn, engine)
        states = store.load_states(conn)
        outcome = evaluate_tick_columns(engine.book, fleet, presence_columns(conn, fleet),
                                        store.stale_after(conn), states, now)
        store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
    return outcome


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
