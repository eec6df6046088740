"""The database side of the simulators: the registry (through devices/store) and history rows.

A thin adapter: populations come from and go to the `devices` table with the registry's
own functions; `fill_history` writes generated readings and events straight into the
tables ingest fills, for tests and dashboards that need data without a broker.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

from devices.decode import Limits
from devices.registry_csv import DeviceRow
from devices.store import iter_devices, upsert_devices
from simulators.device import CSV_COLUMNS, SimDevice
from simulators.faults import FaultWindow
from simulators.history import Backfill, history, readings_of

ACTOR = "simulator"


@dataclass(frozen=True)
class Registered:
    """What `register` did."""

    created: int
    secrets: list[tuple[str, str]]  # (device_id, secret) issued now; the registry keeps a hash


def register(conn: psycopg.Connection, devices: Sequence[SimDevice],
             issue_secrets: bool = False) -> Registered:
    """Upsert the devices into the registry, issuing secrets to those without one if asked."""
    rows = [DeviceRow(**device.row()) for device in devices]  # type: ignore[arg-type]
    result = upsert_devices(conn, rows, CSV_COLUMNS, ACTOR, issue_secrets=issue_secrets,
                            source="simulate")
    return Registered(result.created, result.secrets)


def append_secrets(path: Path, secrets: Iterable[tuple[str, str]]) -> int:
    """Add `device_id,secret` lines to a file only its owner can read; return how many."""
    pairs = list(secrets)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows(pairs)
    return len(pairs)


def read_secrets(path: Path) -> dict[str, str]:
    """The device secrets a file holds (the last line for a device wins)."""
    with path.open(encoding="utf-8", newline="") as source:
        return {row[0]: row[1] for row in csv.reader(source) if len(row) == 2}


def load_population(conn: psycopg.Connection) -> list[SimDevice]:
    """The active devices of the registry, as a population to simulate."""
    return [SimDevice(
        device_id=r.row.device_id, kind=r.row.kind, village=r.row.village,
        township=r.row.township, name=r.row.name, grid=r.row.grid, site=r.row.site,
        latitude=r.row.latitude, longitude=r.row.longitude, gateway_id=r.row.gateway_id,
    ) for r in iter_devices(conn, {"lifecycle": "active"})]


@dataclass(frozen=True)
class Filled:
    """What `fill_history` wrote."""

    readings: int
    events: int


def fill_history(conn: psycopg.Connection, devices: Sequence[SimDevice], plan: Backfill,
                 faults: Iterable[tuple[str, FaultWindow]] = ()) -> Filled:
    """Register the devices and write their generated history, decoded as ingest decodes it.

    For an empty history (fresh database): rows are COPYed, not merged; `latest_values`
    takes each batch's newest values in the batch's transaction, as ingest does.
    """
    register(conn, devices)
    kinds = {device.device_id: device.kind for device in devices}
    # Decoded as received at the plan's end: the first readings are the whole span late
    # (an event taken during the first interval a little more), so twice the span is room.
    limits = Limits(accepted_lateness=2 * (plan.end - plan.start))
    readings_written = events_written = 0
    for batch in history(devices, plan, faults):
        readings, events = readings_of(batch, kinds, plan.end, limits)
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy("COPY readings (device_id, metric, ts, value, received_at)"
                             " FROM STDIN") as copy:
                for r in readings:
                    copy.write_row((r.device_id, r.metric, r.ts, r.value, r.ts))
            with cursor.copy("COPY events (device_id, ts, type, severity, body, received_at)"
                             " FROM STDIN") as copy:
                for e in events:
                    copy.write_row((e.device_id, e.ts, e.type, e.severity,
                                    orjson.dumps(e.body).decode(), e.ts))
            if readings:
                # Their received_at is their ts: the merge reads this batch's rows back.
                cursor.execute("SELECT village_merge_latest(%s)", (min(r.ts for r in readings),))
        readings_written += len(readings)
        events_written += len(events)
    return Filled(readings_written, events_written)
