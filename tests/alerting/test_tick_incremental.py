"""The service keeps the registry and presence as columns and reads only what changed since
its previous pass: its columns always equal a full read, its registry the subjects, and what
the time pass decides equals the object evaluator, over a fleet that changes between passes (devices added,
retired, brought back, moved, deleted; heard, Last Wills, back online; the clock passing
limits), and with writers whose transactions commit after a pass began."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerting import store
from alerting.evaluate import Presence, RuleBook, evaluate_tick
from alerting.tick import TickColumns, read_all, tick_cycle
from tests.alerting.test_columnar import same
from tests.alerting.test_columnar_service import KINDS, RULES, heard

from .fixtures import add_devices, recording_engine

# Ahead of the wall clock: alerts are created (wall time) before any `now` the test passes.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
_UPSERT = ("INSERT INTO device_presence (device_id, last_seen, reported_state, state_changed_at)"
           " VALUES (%s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
           " last_seen = excluded.last_seen, reported_state = excluded.reported_state,"
           " state_changed_at = excluded.state_changed_at")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def by_device(columns: TickColumns) -> dict[str, tuple[object, ...]]:
    """Every row of the columns by device: place labels, tags, registered, heard, offline."""
    fleet = columns.fleet
    return {device_id: (*(c.values[c.codes[row]] for c in fleet.columns.values()),
                        fleet.tag_sets[fleet.tag_codes[row]], int(columns.created[row]),
                        int(columns.heard[row]), int(columns.offline[row]))
            for row, device_id in enumerate(fleet.device_ids)}


def presence_now(conn: psycopg.Connection) -> dict[str, Presence]:
    """Presence as the object evaluator takes it, from the tables: never heard counts from
    registration; a Last Will from when it came (else from the last message)."""
    created: dict[str, datetime] = dict(conn.execute("SELECT device_id, created_at FROM devices").fetchall())
    seen = {device_id: Presence(at) for device_id, at in created.items()}
    for device_id, last, reported, changed in conn.execute(
            "SELECT device_id, last_seen, reported_state, state_changed_at FROM device_presence"):
        if device_id in created:
            seen[device_id] = Presence(last or created[device_id],
                                       (changed or last) if reported == "offline" else None)
    return seen


def change_fleet(conn: psycopg.Connection, rng: random.Random, step: int,
                 now: datetime) -> None:
    """Between passes: the registry and presence change as the CLI, imports and ingest do."""
    limits = store.stale_after(conn)
    active = [r[0] for r in conn.execute(
        "SELECT device_id FROM devices WHERE lifecycle = 'active' ORDER BY device_id")]
    added = [(f"n{step}-{i}", rng.choice(KINDS), f"T{i % 3}", f"V{i % 4}") for i in range(6)]
    add_devices(conn, added)
    rows = [r for d in added[:3] if (r := heard(rng, d[0], limits, d[1])) is not None]
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, [(d, last + (now - NOW), *rest) for d, last, *rest in rows])
        for device_id in rng.sample(active, 5):  # moved, some tagged
            cur.execute("UPDATE devices SET township = %s, village = %s, tags = %s::jsonb"
                        " WHERE device_id = %s", (f"T{rng.randrange(3)}", f"V{rng.randrange(6)}",
                                                  rng.choice(("{}", '{"position": "plant"}')),
                                                  device_id))
        retired = rng.sample(active, 3)
        cur.execute("UPDATE devices SET lifecycle = 'retired' WHERE device_id = ANY(%s)",
                    (retired,))
        if step % 2:  # a retired device comes back with its old presence
            cur.execute("UPDATE devices SET lifecycle = 'active' WHERE device_id IN (SELECT"
                        " device_id FROM devices WHERE lifecycle = 'retired'"
                        " AND NOT device_id = ANY(%s) LIMIT 1)", (retired,))
        if step in (2, 3):  # deleted outright: nothing marks it, the pass must notice anyway
            gone = rng.choice([d for d in active if d not in retired])
            cur.execute("DELETE FROM device_presence WHERE device_id = %s", (gone,))
            cur.execute("DELETE FROM devices WHERE device_id = %s RETURNING kind", (gone,))
            if step == 3:  # and registered anew: as many devices as before, none heard
                kind = cur.fetchone()
                assert kind is not None
                add_devices(conn, [(gone, kind[0], "T0", "V0")])
        for device_id in rng.sample(active, 25):  # heard again, Last Wills, back online
            said = rng.choice((None, None, "online", "offline"))
            at = now - timedelta(microseconds=rng.choice((0, 1)))
            cur.execute(_UPSERT, (device_id, at, said,
                                  rng.choice((None, at - timedelta(seconds=30))) if said else None))


@pytest.mark.parametrize("seed", range(3))
def test_incremental_passes_equal_full_reads_and_the_object_evaluator(
        conn: psycopg.Connection, seed: int) -> None:
    rng = random.Random(seed)
    devices = [(f"{kind[:2]}-{i:04d}", kind, f"T{i % 2}", f"V{i % 5}")
               for i, kind in enumerate(rng.choice(KINDS) for _ in range(250))]
    add_devices(conn, devices)
    limits = store.stale_after(conn)
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, [r for d in devices
                                  if (r := heard(rng, d[0], limits, d[1])) is not None])
    book, engine = RuleBook(RULES), recording_engine(RULES)
    moved = 0
    for step, now in enumerate((NOW, NOW + timedelta(seconds=1), NOW + timedelta(minutes=6),
                                NOW + timedelta(minutes=20), NOW + timedelta(hours=26),
                                NOW + timedelta(hours=27))):
        expected = evaluate_tick(book, store.load_subjects(conn), presence_now(conn), limits,
                                 store.load_states(conn), now)
        same(tick_cycle(conn, engine, now), expected)
        moved += len(expected.transitions)
        assert engine.cache.columns is not None
        assert by_device(engine.cache.columns) == by_device(read_all(conn))
        # The streaming pass's registry is the same columns.
        assert dict(engine.registry(conn)) == store.load_subjects(conn)
        change_fleet(conn, rng, step, now)
    assert moved > 100  # the fleets really fire and resolve alerts


def test_a_write_committed_after_a_pass_began_is_read_by_the_next(
        conn: psycopg.Connection, database_url: str) -> None:
    add_devices(conn, [("ca-1", "camera", "T1", "V1"), ("ca-2", "camera", "T1", "V1")])
    conn.execute("INSERT INTO device_presence (device_id, last_seen) VALUES ('ca-1', %s),"
                 " ('ca-2', %s)", (NOW, NOW))
    engine = recording_engine(RULES)
    tick_cycle(conn, engine, NOW)
    later, much_later = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    # A writer already running when the pass reads (its id in the snapshot's running list),
    # another that writes only after (its id from the snapshot's xmax on): both commit after
    # the pass.
    with psycopg.connect(database_url) as early, psycopg.connect(database_url) as late:
        early.execute("UPDATE device_presence SET last_seen = %s WHERE device_id = 'ca-1'",
                      (later,))
        # A later transaction ends first, so the early one's id is below the snapshot's xmax.
        add_devices(conn, [("ca-3", "camera", "T1", "V1")])
        late.execute("SELECT 1")
        tick_cycle(conn, engine, later)
        late.execute("UPDATE device_presence SET last_seen = %s WHERE device_id = 'ca-2'",
                     (much_later,))
        assert engine.cache.columns is not None
        unchanged = by_device(engine.cache.columns)
        early.commit()
        late.commit()
    assert unchanged["ca-1"][-2] == unchanged["ca-2"][-2]  # neither write could be seen
    tick_cycle(conn, engine, much_later)
    assert engine.cache.columns is not None
    assert by_device(engine.cache.columns) == by_device(read_all(conn)) != unchanged


def test_the_events_and_readings_passes_share_the_registry_without_a_race(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both passes ask for the registry from threads of their own. A refresh leaves no
    # columns until it is done: seen half way, it made the other thread read everything
    # again (in the ten-county soak, alerting's memory grew past a gigabyte).
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_devices(conn, [(f"wm-{i:04d}", "water_meter", "T1", "V1") for i in range(2000)])
    full_reads = []

    def counted_read_all(conn: psycopg.Connection) -> TickColumns:
        full_reads.append(1)
        return read_all(conn)
    monkeypatch.setattr("alerting.tick.read_all", counted_read_all)
    engine = recording_engine([])
    failures: list[BaseException] = []

    def ask() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for _ in range(40):
                try:
                    assert len(engine.cache.registry(conn, refresh_s=0.0)) == 2000
                except BaseException as exc:  # noqa: BLE001 - the test collects them
                    failures.append(exc)
    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(full_reads) == 1  # the first; every later refresh reads what changed
