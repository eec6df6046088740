"""The signed-in user's part of the county as a SQL condition, for the console's own
summaries (lists and single records come from the domain services, which check scope)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from ground.principal import Principal


def within(principal: Principal, alias: str) -> tuple[sql.Composable, list[Any]]:
    """`alias.township = ... AND alias.village = ...` as far as the principal's scope goes."""
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    for column, value in (("township", principal.scope.township),
                          ("village", principal.scope.village)):
        if value is not None:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(alias, column)))
            params.append(value)
    return sql.SQL(" AND ").join(parts), params


def place_level(principal: Principal) -> str:
    """The level one below the principal's scope: township, village or grid."""
    if principal.scope.village is not None:
        return "grid"
    return "village" if principal.scope.township is not None else "township"
