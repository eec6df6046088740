"""The broker's logins as the registry keeps them (database adapter): device secret hashes
for the generated passwd file and the plugin's file, and the service accounts' hashes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg


def broker_accounts(conn: psycopg.Connection) -> Iterator[tuple[str, str]]:
    """(device_id, secret hash) of every active device that has a secret, streamed."""
    with conn.transaction(), conn.cursor(name="registry_broker_accounts") as cursor:
        cursor.itersize = 10_000
        cursor.execute("SELECT device_id, secret_hash FROM devices"
                       " WHERE lifecycle = 'active' AND secret_hash IS NOT NULL"
                       " ORDER BY device_id")
        yield from cursor


def service_hashes(conn: psycopg.Connection) -> dict[str, str]:
    """The stored secret hash of each service account, by username."""
    return dict(conn.execute("SELECT name, secret_hash FROM service_accounts").fetchall())


def store_service_hash(conn: psycopg.Connection, username: str, hashed: str) -> None:
    """Record a service account's new secret hash."""
    conn.execute(
        "INSERT INTO service_accounts (name, secret_hash) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, issued_at = now()",
        (username, hashed))
