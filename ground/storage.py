"""Which storage path a database takes: TimescaleDB or plain PostgreSQL.

`VILLAGE_STORAGE` asks for `auto`, `timescale` or `plain`. The choice is a pure function of
what the server says (`server_facts`): TimescaleDB is taken only where the extension can
really be used, that is where it is in `shared_preload_libraries` (a package that is merely
installed makes `CREATE EXTENSION` fail). Once the schema exists the database keeps the path
it was created with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg

Storage = Literal["timescale", "plain"]
StorageChoice = Literal["auto", "timescale", "plain"]
PRELOAD_FIX = ("add timescaledb to shared_preload_libraries in postgresql.conf and restart"
               " PostgreSQL, or set VILLAGE_STORAGE=plain")


class StorageError(Exception):
    """The storage asked for cannot be had here; the message is one line saying why."""


@dataclass(frozen=True)
class ServerFacts:
    """What the server and the database say about TimescaleDB."""

    recorded: Storage | None  # the path the schema was created with, if it exists
    available: bool  # the extension's files are installed on the server
    preloaded: bool  # its library is loaded at server start (shared_preload_libraries)


@dataclass(frozen=True)
class StorageDecision:
    """The path taken and, in one line, why."""

    storage: Storage
    reason: str


def choose_storage(requested: StorageChoice, facts: ServerFacts) -> StorageDecision:
    """The storage path for `requested` on a server with these facts (pure).

    Raises StorageError when `timescale` is asked for and cannot work, or when the asked
    path differs from the one the database already has.
    """
    if facts.recorded is not None:
        if requested != "auto" and requested != facts.recorded:
            raise StorageError(f"VILLAGE_STORAGE={requested}, but this database was created with"
                               f" {facts.recorded} storage, which cannot change")
        if facts.recorded == "timescale" and not facts.preloaded:
            raise StorageError(f"this database uses TimescaleDB, which is not preloaded: {PRELOAD_FIX}")
        return StorageDecision(facts.recorded, "the storage this database was created with")
    if requested == "plain":
        return StorageDecision("plain", "VILLAGE_STORAGE=plain")
    if requested == "timescale":
        if not facts.available:
            raise StorageError("VILLAGE_STORAGE=timescale, but the timescaledb extension is not"
                               " installed on this PostgreSQL server")
        if not facts.preloaded:
            raise StorageError(f"VILLAGE_STORAGE=timescale, but timescaledb is not preloaded:"
                               f" {PRELOAD_FIX}")
        return StorageDecision("timescale", "VILLAGE_STORAGE=timescale")
    if facts.preloaded:
        return StorageDecision("timescale", "TimescaleDB is preloaded on this server")
    if facts.available:
        return StorageDecision("plain", "TimescaleDB is installed but not in"
                                        " shared_preload_libraries, so it cannot be used")
    return StorageDecision("plain", "TimescaleDB is not installed on this server")


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    """Ask the server (and the schema, if any) what `choose_storage` needs."""
    recorded: Storage | None = None
    if conn.execute("SELECT to_regclass('village_meta') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
        row = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
        recorded = ("timescale" if row[0] == "timescale" else "plain") if row else None
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is not None
    return ServerFacts(recorded, available, available and _preloaded(conn))


def _preloaded(conn: psycopg.Connection) -> bool:
    # The loader registers the extension's settings at server start; without a preload they
    # are unknown until something loads the library (which a fresh session has not done).
    # Reading shared_preload_libraries itself needs a superuser or pg_read_all_settings.
    row = conn.execute(
        "SELECT count(*) FROM pg_settings WHERE name = 'timescaledb.max_background_workers'"
    ).fetchone()
    return bool(row and row[0])
