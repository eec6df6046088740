"""The device registry's SQL (adapter): the queries over `devices` and what hangs off it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from ground.principal import Principal


def scope_conditions(principal: Principal, alias: str, equal: Mapping[str, Any],
                     after: str | None = None) -> tuple[sql.Composable, list[Any]]:
    """A WHERE condition: in the principal's scope, each given column equal to its value
    (None: any), and the device id after `after` (keyset paging)."""
    scope = (("township", principal.scope.township), ("village", principal.scope.village))
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for column, value in (*scope, *equal.items()):
        if value is not None:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(alias, column)))
            params.append(value)
    if after is not None:
        parts.append(sql.SQL("{} > %s").format(sql.Identifier(alias, "device_id")))
        params.append(after)
    return sql.SQL(" AND ").join(parts), params
