"""Versioned, idempotent schema migrations, safe to run from several processes at once.

Each migration is `migrations/NNNN_name.sql` (both storage paths), optionally followed by
`NNNN_name.timescale.sql` or `NNNN_name.plain.sql` for the path this database takes. After
the migrations, every run re-applies the service roles' grants (ground.roles) and the
storage policies (retention of raw data and of records).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

import psycopg
from psycopg.types.json import Jsonb

from ground.roles import apply_grants
from ground.storage import Storage, StorageChoice, StorageDecision, choose_storage, server_facts

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


@dataclass(frozen=True)
class MigrationReport:
    """What a migrate run found and did."""

    storage: Storage
    applied: list[str]
    current_version: int
    reason: str = ""  # why this storage path (one line)


class SchemaBehind(Exception):
    """The database's schema is missing or older than this code: `village migrate` fixes it.

    `missing` are the versions this code ships that the database lacks (a version below
    the database's newest one lands when migrations are numbered ahead of being written).
    """

    def __init__(self, current: int, latest: int, missing: Sequence[int] = ()) -> None:
        self.current, self.latest, self.missing = current, latest, list(missing)
        super().__init__(f"the database {self.what}: run village migrate")

    @property
    def what(self) -> str:
        """What is wrong, e.g. `has schema version 5, this code needs 10`."""
        if self.current == 0:
            return "has no schema"
        if self.current < self.latest:
            return f"has schema version {self.current}, this code needs {self.latest}"
        return "lacks migration " + ", ".join(f"{version:04d}" for version in self.missing)


def latest_version() -> int:
    """The newest schema version this code ships."""
    return max(migration.version for migration in load_migrations())


def applied_versions(conn: psycopg.Connection) -> set[int]:
    """The versions the database has (none: never migrated)."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return set()
    return {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}


def schema_version(conn: psycopg.Connection) -> int:
    """The newest schema version the database has (0: never migrated)."""
    return max(applied_versions(conn), default=0)


def require_current_schema(conn: psycopg.Connection) -> None:
    """Raise SchemaBehind unless the database has every migration this code ships."""
    applied = applied_versions(conn)
    missing = sorted({migration.version for migration in load_migrations()} - applied)
    if missing:
        raise SchemaBehind(max(applied, default=0), latest_version(), missing)


class MigrationError(Exception):
    """A migration statement failed; the message is one line naming the migration and the
    database's own error."""


@dataclass(frozen=True)
class RecordRetention:
    """How long the records beside the raw data are kept (each its own setting)."""

    dead_letters: timedelta = timedelta(days=90)
    alert_history: timedelta = timedelta(days=730)
    broadcasts: timedelta = timedelta(days=730)


Seed = Callable[[psycopg.Connection], None]


def migrate(database_url: str, retention: timedelta, seed: Seed | None = None, *,
            storage: StorageChoice = "auto", records: RecordRetention | None = None,
            up_to: int | None = None) -> MigrationReport:
    """Bring the schema to the newest version (or to `up_to`), run `seed` (in a transaction,
    under the same lock), then apply the grants and the retention.

    Raises StorageError when the storage asked for cannot be had, MigrationError when a
    statement fails; both carry one line.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            return _migrate_locked(conn, storage, retention, records or RecordRetention(), seed,
                                   up_to)
        finally:
            _unlock(conn)


def _unlock(conn: psycopg.Connection) -> None:
    # A failed statement may have closed the connection, and the session's end has then
    # released the lock: a second error here would only hide the first.
    if conn.closed or conn.broken:
        return
    with contextlib.suppress(psycopg.Error):
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def _migrate_locked(conn: psycopg.Connection, requested: StorageChoice, retention: timedelta,
                    records: RecordRetention, seed: Seed | None,
                    up_to: int | None = None) -> MigrationReport:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    decision: StorageDecision = choose_storage(requested, server_facts(conn))
    storage = decision.storage
    done = applied_versions(conn)
    applied: list[str] = []
    for migration in load_migrations():
        if migration.version in done or (up_to and migration.version > up_to):
            continue
        name = f"{migration.version:04d}_{migration.name}"
        with _reported(f"migration {name}"), conn.transaction():
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
        applied.append(name)
    if seed is not None:
        with _reported("seeding the catalogue"), conn.transaction():
            seed(conn)
    with _reported("granting the service roles"), conn.transaction():
        apply_grants(conn)
    with _reported("applying the retention"), conn.transaction():
        apply_storage_policies(conn, storage, retention, records)
    return MigrationReport(storage, applied, schema_version(conn), decision.reason)


@contextlib.contextmanager
def _reported(step: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MigrationError(f"{step} failed: {first_line}") from exc


def record_retention_config(records: RecordRetention) -> dict[str, str]:
    """The intervals the retention of records runs with (arguments of village_prune_records)."""
    return {"dead_letters": f"{records.dead_letters.total_seconds():.0f} seconds",
            "alert_history": f"{records.alert_history.total_seconds():.0f} seconds",
            "broadcasts": f"{records.broadcasts.total_seconds():.0f} seconds"}


def apply_storage_policies(conn: psycopg.Connection, storage: Storage, retention: timedelta,
                           records: RecordRetention) -> None:
    """Set the raw-data retention and the records' retention on TimescaleDB (its jobs); on
    the plain path, prepare the coming partitions (the ingest maintenance does the rest)."""
    if storage == "plain":
        prepare_partitions(conn)
        return
    for table in ("readings", "events"):
        conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
        conn.execute("SELECT add_retention_policy(%s, %s)", (table, retention))
    conn.execute("SELECT delete_job(job_id) FROM timescaledb_information.jobs"
                 " WHERE proc_name = 'village_prune_records_job'")
    conn.execute("SELECT add_job('village_prune_records_job', INTERVAL '1 hour', config => %s)",
                 (Jsonb(record_retention_config(records)),))


def prepare_partitions(conn: psycopg.Connection) -> int:
    """Create the plain path's monthly partitions from last month to three months ahead."""
    row = conn.execute(
        "SELECT village_ensure_partitions(now() - INTERVAL '1 month', now() + INTERVAL '3 months')"
    ).fetchone()
    return int(row[0]) if row else 0
