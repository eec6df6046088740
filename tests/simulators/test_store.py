"""Populations to and from the registry, and generated history written into the real schema."""

from __future__ import annotations

from datetime import datetime

import psycopg

from simulators.history import Backfill
from simulators.population import PopulationSpec, generate_population
from simulators.store import Registered, fill_history, load_population, register

T0 = datetime.fromisoformat("2026-11-16T00:00:00+08:00")
SMALL = PopulationSpec(townships=1, villages=2, meters=10, probes=1, cameras=2, barns=1,
                       speakers=2, gateways=True)


def test_a_population_round_trips_through_the_registry(database_url: str) -> None:
    devices = generate_population(SMALL, seed=2)
    with psycopg.connect(database_url) as conn:
        assert register(conn, devices).created == len(devices)
        assert register(conn, devices) == Registered(0, [])
        assert sorted(load_population(conn), key=lambda d: d.device_id) == sorted(
            devices, key=lambda d: d.device_id)


def test_fill_history_writes_what_ingest_would_store(database_url: str) -> None:
    devices = generate_population(SMALL, seed=2)
    with psycopg.connect(database_url) as conn:
        filled = fill_history(conn, devices, Backfill(T0, 1, seed=2, nb_iot_share=0))
        row = conn.execute(
            "SELECT count(*), min(ts), max(ts), count(DISTINCT device_id) FROM readings").fetchone()
        assert row is not None
        count, first, last, heard = row
        events = conn.execute("SELECT count(*) FROM events").fetchone()
    assert count == filled.readings and events == (filled.events,)
    assert first >= T0 and (last - T0).total_seconds() <= 86_400
    assert heard == len(devices)
