"""The backup procedure of docs/deploy.md: a `pg_dump -Fc` of a populated database, restored
into an empty one as the docs say (with TimescaleDB's pre/post-restore on that path), gives
back every relation row for row, and the schema needs no migration afterwards."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ground.local import postgres_bin_dir
from tests.conftest import ADMIN_URL, create_database, drop_database
from tests.dashboards.county import fill
from village.schema import migrate


@pytest.fixture
def restored_name() -> Iterator[str]:
    """The name of the database the backup is restored into (dropped afterwards)."""
    name = f"village_restored_{uuid.uuid4().hex[:12]}"
    yield name
    drop_database(ADMIN_URL, name)


def relations(conn: psycopg.Connection) -> list[str]:
    """Every table, view and continuous aggregate of the schema (partitions through their
    parent)."""
    return [name for (name,) in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')"
        " AND NOT c.relispartition ORDER BY 1")]


def fingerprint(conn: psycopg.Connection, relation: str) -> tuple[int, str | None]:
    """Row count and a digest of every row, in a fixed order."""
    row = conn.execute(sql.SQL(
        "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} AS t"
    ).format(sql.Identifier(relation))).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def test_a_dump_and_restore_round_trips_every_relation(database_url: str, restored_name: str,
                                                        tmp_path: Path) -> None:
    # Data ending now (on the hour): TimescaleDB's retention jobs restart with the restore
    # and would rightly drop data written as if long ago.
    fill(database_url, datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    with psycopg.connect(database_url, autocommit=True) as conn:
        storage = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
        timescale = storage == ("timescale",)
        if timescale:  # materialize the rollups, so the dump holds aggregate rows too
            for rollup in ("readings_hourly", "readings_daily"):
                conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (rollup,))
        conn.execute("INSERT INTO api_tokens (name, token_hash, role, created_by) VALUES"
                     " ('ops', repeat('a', 64), 'admin', 'test')")
        before = {relation: fingerprint(conn, relation) for relation in relations(conn)}
    assert before["readings"][0] > 1000 and before["readings_hourly"][0] > 100
    assert before["alerts"][0] > 0 and before["broadcasts"][0] > 0

    bin_dir = postgres_bin_dir()
    dump = tmp_path / "village.dump"
    subprocess.run([str(bin_dir / "pg_dump"), "-Fc", "-f", str(dump), database_url], check=True,
                   capture_output=True)
    restored_url = create_database(ADMIN_URL, restored_name)
    if timescale:
        with psycopg.connect(restored_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("SELECT timescaledb_pre_restore()")
    subprocess.run([str(bin_dir / "pg_restore"), "--exit-on-error", "-d", restored_url,
                    str(dump)], check=True, capture_output=True)
    with psycopg.connect(restored_url, autocommit=True) as conn:
        if timescale:
            conn.execute("SELECT timescaledb_post_restore()")
        after = {relation: fingerprint(conn, relation) for relation in relations(conn)}
    assert after == before
    report = migrate(restored_url, timedelta(days=730))
    assert report.applied == [] and report.storage == (storage[0] if storage else None)
