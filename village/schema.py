"""The schema as every entry point brings it up: the migrations, then the device catalogue
mirrored into SQL (`device_kinds`, `metrics`)."""

from __future__ import annotations

from datetime import timedelta

from devices.store import sync_catalogue
from ground.migrate import MigrationReport
from ground.migrate import migrate as run_migrations


def migrate(database_url: str, retention: timedelta) -> MigrationReport:
    """Bring the schema to the newest version and sync the kind catalogue into it."""
    return run_migrations(database_url, retention, seed=sync_catalogue)
