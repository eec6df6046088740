"""Register speakers straight into the registry table for broadcast tests."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg


def register_speakers(database_url: str, speakers: Iterable[tuple[str, str, str]]) -> None:
    """Insert active speakers given as (device_id, township, village)."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO devices (device_id, kind, township, village) VALUES (%s, 'speaker', %s, %s)",
            list(speakers))


def county_of(count: int, townships: int = 2, villages: int = 5) -> list[tuple[str, str, str]]:
    """`count` speakers spread over townships T0.. and villages V0.. (ids spk-0000...)."""
    return [(f"spk-{n:04d}", f"T{n % townships}", f"V{n % villages}") for n in range(count)]
