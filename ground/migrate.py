"""Versioned, idempotent schema migrations, safe to run from several processes at once.

Each migration is `migrations/NNNN_name.sql` (both storage paths), optionally followed by
`NNNN_name.timescale.sql` or `NNNN_name.plain.sql` for the path this database takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Literal

import psycopg

Storage = Literal["timescale", "plain"]

# An arbitrary constant shared by every process that migrates (pg_advisory_lock key).
MIGRATION_LOCK = 0x5641_4C4C  # "VALL"
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    """One schema version: its common SQL and the part for each storage path."""

    version: int
    name: str
    common: str
    timescale: str
    plain: str

    def sql_for(self, storage: Storage) -> str:
        """The whole SQL text this migration runs on the given storage path."""
        return self.common + "\n" + (self.timescale if storage == "timescale" else self.plain)


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, oldest first."""
    folder = resources.files("ground") / "migrations"
    texts = {entry.name: entry.read_text(encoding="utf-8") for entry in folder.iterdir()
             if entry.name.endswith(".sql")}
    migrations = []
    for file_name in sorted(texts):
        match = _FILE_NAME.fullmatch(file_name)
        if match is None:
            continue  # a .timescale.sql or .plain.sql part, read with its migration
        stem = file_name.removesuffix(".sql")
        migrations.append(Migration(
            version=int(match.group(1)),
            name=match.group(2),
            common=texts[file_name],
            timescale=texts.get(f"{stem}.timescale.sql", ""),
            plain=texts.get(f"{stem}.plain.sql", ""),
        ))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return migrations


def detect_storage(conn: psycopg.Connection) -> Storage:
    """TimescaleDB if the extension is installed or can be created (available and preloaded),
    plain PostgreSQL otherwise."""
    row = conn.execute(
        "SELECT value FROM village_meta WHERE key = 'storage'"
        if _table_exists(conn, "village_meta") else "SELECT NULL"
    ).fetchone()
    if row and row[0]:
        return "timescale" if row[0] == "timescale" else "plain"
    # Available is not enough: CREATE EXTENSION fails unless the library is preloaded.
    usable = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        " AND (installed_version IS NOT NULL OR 'timescaledb' = ANY(string_to_array("
        "replace(current_setting('shared_preload_libraries'), ' ', ''), ',')))"
    ).fetchone()
    return "timescale" if usable else "plain"


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]  # type: ignore[index]


@dataclass(frozen=True)
class MigrationReport:
    """What a migrate run found and did."""

    storage: Storage
    applied: list[str]
    current_version: int


Seed = Callable[[psycopg.Connection], None]


def migrate(database_url: str, retention: timedelta, seed: Seed | None = None) -> MigrationReport:
    """Bring the schema to the newest version, run `seed` (in a transaction, under the same
    lock), then apply the retention."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            return _migrate_locked(conn, retention, seed)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def _migrate_locked(conn: psycopg.Connection, retention: timedelta,
                    seed: Seed | None) -> MigrationReport:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    storage = detect_storage(conn)
    applied_versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied: list[str] = []
    for migration in load_migrations():
        if migration.version in applied_versions:
            continue
        with conn.transaction():
            if storage == "timescale":
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute(migration.sql_for(storage).encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            if migration.version == 1:
                conn.execute(
                    "INSERT INTO village_meta VALUES ('storage', %s)", (storage,)
                )
        applied.append(f"{migration.version:04d}_{migration.name}")
    if seed is not None:
        with conn.transaction():
            seed(conn)
    apply_storage_policies(conn, storage, retention)
    current = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]  # type: ignore[index]
    return MigrationReport(storage, applied, current or 0)


def apply_storage_policies(conn: psycopg.Connection, storage: Storage, retention: timedelta) -> None:
    """Set the raw-data retention (and, on the plain path, prepare the coming partitions)."""
    if storage == "timescale":
        for table in ("readings", "events"):
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
            conn.execute("SELECT add_retention_policy(%s, %s)", (table, retention))
    else:
        prepare_partitions(conn)


def prepare_partitions(conn: psycopg.Connection) -> int:
    """Create the plain path's monthly partitions from last month to three months ahead."""
    row = conn.execute(
        "SELECT village_ensure_partitions(now() - INTERVAL '1 month', now() + INTERVAL '3 months')"
    ).fetchone()
    return int(row[0]) if row else 0
