"""Figures over the whole fleet in a scope (the overview's counts and map), read at most
every FRESH_S and shared by everyone in that scope.

A county's figures come from 18,000 devices; statuses behind them are judged over minutes
(a kind's silence limit), so a few seconds' age costs nothing. A stale value is served while
a thread reads it anew: only a scope's first request after a start waits for the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from ground.principal import Principal

FRESH_S = 10.0  # how long a scope's value is served before it is read anew
T = TypeVar("T")
Key = tuple[str | None, str | None]
log = logging.getLogger("village.console")


class ScopeCache(Generic[T]):
    """One value per scope (township, village), from `read`."""

    def __init__(self, name: str, pool: ConnectionPool,
                 read: Callable[[psycopg.Connection, Principal], T]) -> None:
        self._name = name
        self._pool = pool
        self._read = read
        self._held: dict[Key, tuple[T, float]] = {}
        self._reading: set[Key] = set()
        self._lock = threading.Lock()

    def get(self, conn: psycopg.Connection, principal: Principal, clock: float) -> T:
        """The scope's value: read on `conn` if none is held, else the one held (read anew
        behind the answer when it is FRESH_S old at `clock`)."""
        key = (principal.scope.township, principal.scope.village)
        with self._lock:
            found = self._held.get(key)
            refresh = (found is not None and clock - found[1] >= FRESH_S
                       and key not in self._reading)
            if refresh:
                self._reading.add(key)
        if found is None:
            value = self._read(conn, principal)
            self._held[key] = (value, clock)
            return value
        if refresh:
            threading.Thread(target=self._refresh, args=(key, principal, clock),
                             name=f"console-{self._name}", daemon=True).start()
        return found[0]

    def _refresh(self, key: Key, principal: Principal, clock: float) -> None:
        try:
            with self._pool.connection() as conn:
                self._held[key] = (self._read(conn, principal), clock)
        except psycopg.Error as exc:  # the held value is served until a later read succeeds
            log.warning("console %s not refreshed: %s", self._name,
                        (str(exc).strip().splitlines() or [type(exc).__name__])[0])
        finally:
            with self._lock:
                self._reading.discard(key)
