"""API fixtures: an app on a fresh database, a seeded registry, tokens per role and scope."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from ground.local import free_port
from ground.principal import SYSTEM, Place, Role
from tests.conftest import refresh_rollups
from village.api.app import create_app
from village.api.serve import start
from village.api.settings import ApiSettings
from village.api.tokens import create_token
from village.settings import Settings

# Two townships with two villages each; the device ids say where they are.
PLACES = {
    "east": ("east-1", "east-2"),
    "west": ("west-1", "west-2"),
}
KINDS = ("water_meter", "water_quality", "speaker")
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def device_id(kind: str, village: str, n: int = 1) -> str:
    """The id the seed gives a device of `kind` in `village`."""
    return f"{kind.replace('_', '')}-{village}-{n:02d}"


def seed_registry(conn: psycopg.Connection) -> None:
    """One device of each kind per village, plus meter readings for three days."""
    for township, villages in PLACES.items():
        for village in villages:
            for kind in KINDS:
                conn.execute(
                    "INSERT INTO devices (device_id, kind, township, village, grid, name)"
                    " VALUES (%s, %s, %s, %s, 'g1', %s)",
                    (device_id(kind, village), kind, township, village, f"{village} {kind}"),
                )
            meter = device_id("water_meter", village)
            # One reading per hour: the register grows by 0.1 m3 an hour.
            with conn.cursor().copy("COPY readings (device_id, metric, ts, value) FROM STDIN") as copy:
                for hour in range(72):
                    ts = NOW - timedelta(hours=72 - hour)
                    copy.write_row((meter, "total_m3", ts, 100 + hour * 0.1))
                    copy.write_row((meter, "flow_m3h", ts, 0.1))
    conn.execute("SELECT village_merge_latest()")
    refresh_rollups(conn)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Development settings on this test's database, with no broker listening."""
    return Settings(database_url=database_url, development=True,
                    mqtt_url=f"mqtt://127.0.0.1:{free_port()}")


@pytest.fixture
def seeded(database_url: str) -> str:
    """The test database with the seed registry and readings."""
    with psycopg.connect(database_url) as conn:
        seed_registry(conn)
    return database_url


@pytest.fixture
def client(settings: Settings, seeded: str) -> Iterator[TestClient]:
    """A client of the API on the seeded database."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def server(settings: Settings, seeded: str) -> Iterator[str]:
    """The API served by uvicorn on a free port, in this process, on the seeded database."""
    handle = start(settings.model_copy(update={"api": ApiSettings(port=free_port())}))
    yield handle.url
    handle.stop()


TokenMaker = Callable[..., dict[str, str]]


@pytest.fixture
def auth(database_url: str) -> TokenMaker:
    """Make a token with a role and scope; returns the Authorization header for it."""
    made = 0

    def make(role: Role = Role.ADMIN, township: str | None = None,
             village: str | None = None) -> dict[str, str]:
        nonlocal made
        made += 1
        with psycopg.connect(database_url) as conn:
            _, secret = create_token(conn, SYSTEM, f"t{made}-{role.name.lower()}", role,
                                     Place(township, village))
        return {"Authorization": f"Bearer {secret}"}

    return make


def insert_alert(database_url: str, village: str = "east-1", township: str = "east",
                 state: str = "firing", severity: str = "major") -> int:
    """An alert on the village's meter, as the alerting service records one."""
    meter = device_id("water_meter", village)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (fingerprint, rule, condition, severity, state, device_id, kind,"
            " township, village, grid, metric, summary, value, threshold, last_value,"
            " started_at, fired_at)"
            " VALUES (%s, 'night_flow', 'threshold', %s, %s, %s, 'water_meter', %s, %s, 'g1',"
            " 'flow_m3h', '夜间流量偏高', 0.1, 0.05, 0.1, %s, %s) RETURNING id",
            (f"fp-{village}-{uuid.uuid4().hex[:6]}", severity, state, meter, township, village,
             NOW - timedelta(hours=3), NOW - timedelta(hours=2)),
        ).fetchone()
        assert row is not None
        conn.execute("INSERT INTO alert_transitions (alert_id, at, from_state, to_state, value)"
                     " VALUES (%s, %s, NULL, 'firing', 0.1)", (row[0], NOW - timedelta(hours=2)))
    return int(row[0])
