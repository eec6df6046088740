"""The service's time pass (`tick_cycle`: the registry and presence read from PostgreSQL as
columns) decides what the object evaluator decides over the same devices, presence and
states: never heard, a Last Will `offline`, silences exactly at the limit, pass after pass."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerting import store
from alerting.evaluate import Presence, RuleBook, evaluate_tick
from alerting.files import load_rules
from alerting.tick import tick_cycle
from tests.alerting.test_columnar import same

from .fixtures import add_devices, recording_engine
from .helpers import rule

# Ahead of the wall clock: alerts are created (wall time) before any `now` the test passes.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
KINDS = ("water_meter", "camera", "water_quality", "barn", "speaker", "gateway")
RULES = [*load_rules([]), rule({"stopped": {"for": "1h"}}, kind="camera", name="cam-v2-hour",
                               village="V2")]


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def heard(rng: random.Random, device_id: str, limits: dict[str, float], kind: str
          ) -> tuple[str, datetime, str | None, datetime | None] | None:
    """A presence row: silent up to twice the kind's limit, often exactly at it; some Last
    Wills (with and without their own time); None: never heard."""
    if rng.random() < 0.08:
        return None
    limit = limits[kind]
    silent = rng.choice((0.0, limit - 1, limit, limit + 1, limit / 2, 2 * limit, 3600.0))
    last = NOW - timedelta(seconds=silent, microseconds=rng.choice((0, 0, 1, 999_999)))
    if rng.random() < 0.12:
        changed = rng.choice((None, NOW - timedelta(seconds=rng.uniform(0, 2 * limit))))
        return device_id, last, "offline", changed
    return device_id, last, rng.choice((None, "online")), None


def as_presence(row: tuple[str, datetime, str | None, datetime | None]) -> Presence:
    """What the row means: a Last Will counts from when it came (else from the last message)."""
    _, last, reported, changed = row
    return Presence(last, (changed or last) if reported == "offline" else None)


@pytest.mark.parametrize("seed", range(3))
def test_the_services_columnar_tick_equals_the_object_evaluator(conn: psycopg.Connection,
                                                                seed: int) -> None:
    rng = random.Random(seed)
    devices = [(f"{kind[:2]}-{i:04d}", kind, f"T{i % 2}", f"V{i % 5}")
               for i, kind in enumerate(rng.choice(KINDS) for _ in range(300))]
    add_devices(conn, devices)
    limits = store.stale_after(conn)
    rows = [r for d in devices if (r := heard(rng, d[0], limits, d[1])) is not None]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO device_presence (device_id, last_seen, reported_state,"
                        " state_changed_at) VALUES (%s, %s, %s, %s)", rows)
    # Never heard: silent since registration.
    seen = {d: Presence(created) for d, created in conn.execute(
        "SELECT device_id, created_at FROM devices")}
    seen.update({row[0]: as_presence(row) for row in rows})
    book, engine = RuleBook(RULES), recording_engine(RULES)
    moved = 0
    for step, now in enumerate((NOW, NOW + timedelta(seconds=1), NOW + timedelta(minutes=7),
                                NOW + timedelta(hours=26))):
        states = store.load_states(conn)
        expected = evaluate_tick(book, store.load_subjects(conn), seen, limits, states, now)
        same(tick_cycle(conn, engine, now), expected)
        moved += len(expected.transitions)
        # Some devices are heard again, a few exactly at this pass's instant.
        for device_id, *_ in rng.sample(devices, 30):
            at = now - timedelta(microseconds=rng.choice((0, 1)))
            conn.execute("INSERT INTO device_presence (device_id, last_seen) VALUES (%s, %s)"
                         " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen,"
                         " reported_state = NULL", (device_id, at))
            seen[device_id] = Presence(at)
        assert step < 3 or moved > 100  # the fleets really fire and resolve alerts
