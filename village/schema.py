"""The schema as every entry point brings it up: the migrations, then the device catalogue
mirrored into SQL (`device_kinds`, `metrics`)."""

from __future__ import annotations

from datetime import timedelta

from devices.store import sync_catalogue
from ground.migrate import MigrationReport, RecordRetention
from ground.migrate import migrate as run_migrations
from ground.storage import StorageChoice
from ingest.maintenance import record_intervals
from ingest.settings import RetentionSettings


def migrate(database_url: str, retention: timedelta, *, storage: StorageChoice = "auto",
            records: RecordRetention | None = None) -> MigrationReport:
    """Bring the schema to the newest version and sync the kind catalogue into it."""
    return run_migrations(database_url, retention, seed=sync_catalogue, storage=storage,
                          records=records)


def migrate_as_configured(database_url: str, storage: StorageChoice,
                          retention: RetentionSettings) -> MigrationReport:
    """`migrate` with the storage and retention settings of a process."""
    return migrate(database_url, timedelta(days=retention.raw_days), storage=storage,
                   records=record_retention(retention))


def record_retention(retention: RetentionSettings) -> RecordRetention:
    """The records' retention the settings ask for."""
    return RecordRetention(*record_intervals(retention))
