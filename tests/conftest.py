"""Shared fixtures: a fresh migrated database per test, private brokers and clusters.

Tests talk to the real PostgreSQL (`TEST_DATABASE_ADMIN_URL`, default the local server) and to
real Mosquitto processes; nothing third-party is mocked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from ground.local import AmqttServer, MosquittoServer, PostgresCluster
from village.schema import migrate

# The headless Chromium fixture, for every browser test.
pytest_plugins = ["tests.browser"]

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url_for(admin_url: str, name: str) -> str:
    """The URL of database `name` on the server `admin_url` points at."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Create a database (optionally from a template) and return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return database_url_for(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database, disconnecting whoever is still on it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def refresh_rollups(conn: psycopg.Connection) -> None:
    """Bring the rollups up to date as the service would: on plain PostgreSQL its refresh;
    on TimescaleDB nothing, since the continuous aggregates answer in real time."""
    storage = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
    if storage == ("plain",):
        conn.execute("SELECT village_refresh_rollups()")


def seal_template(admin_url: str, name: str) -> None:
    """Let nobody connect to a template any more, so copying it never finds it in use (on
    TimescaleDB, its job scheduler would otherwise come and go at any time).

    On TimescaleDB its jobs are unscheduled first: they run on the wall clock, and tests fix
    "now" (a retention job would rightly delete data written as of a past instant). Tests
    of the jobs run them with `CALL run_job(...)`.
    """
    with psycopg.connect(database_url_for(admin_url, name), autocommit=True) as conn:
        if conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone() == (
                "timescale",):
            conn.execute("SELECT alter_job(job_id, scheduled => false)"
                         " FROM timescaledb_information.jobs")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     (name,))


@pytest.fixture(scope="session")
def migrated_template(worker_id: str) -> Iterator[str]:
    """A database migrated once per test process, copied for every test."""
    name = f"village_template_{worker_id}_{os.getpid()}"
    url = create_database(ADMIN_URL, name)
    migrate(url, retention=timedelta(days=730))
    seal_template(ADMIN_URL, name)
    yield name
    drop_database(ADMIN_URL, name)


@pytest.fixture
def database_url(migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"village_test_{uuid.uuid4().hex[:12]}"
    url = create_database(ADMIN_URL, name, template=migrated_template)
    yield url
    drop_database(ADMIN_URL, name)


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = f"village_empty_{uuid.uuid4().hex[:12]}"
    url = create_database(ADMIN_URL, name)
    yield url
    drop_database(ADMIN_URL, name)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests sharing a broker never see each other."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A private Mosquitto on a free port with the project's no-loss settings."""
    server = MosquittoServer(data_dir=tmp_path / "mosquitto").start()
    yield server
    server.kill()


@pytest.fixture
def amqtt(tmp_path: Path) -> Iterator[AmqttServer]:
    """A private amqtt, the embedded MQTT 3.1.1 broker `village up` falls back on."""
    server = AmqttServer(data_dir=tmp_path / "amqtt").start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster on a free port, for tests that stop or restart it."""
    # initdb runs as `postgres` when we are root, so the directory must be reachable by it.
    base = Path(tempfile.mkdtemp(prefix="village-pg-"))
    base.chmod(0o755)
    cluster = PostgresCluster(data_dir=base / "data").init().start()
    yield cluster
    cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """The pytest-xdist worker id ("master" without xdist)."""
    return getattr(request.config, "workerinput", {}).get("workerid", "master")
