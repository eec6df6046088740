"""The audit trail: one row per change, written in the change's own transaction."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ground.principal import Place, Principal


def record(conn: psycopg.Connection, actor: Principal, action: str, target: str,
           place: Place | None = None, detail: dict[str, Any] | None = None) -> None:
    """Record that `actor` did `action` to `target` (in the caller's transaction)."""
    conn.execute(
        "INSERT INTO api_audit (actor, actor_role, action, target, township, village, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (actor.name, actor.role.label, action, target,
         place.township if place else None, place.village if place else None,
         Jsonb(detail or {})),
    )
