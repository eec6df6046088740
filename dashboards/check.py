"""Run every panel's query against a database the way Grafana would send it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from dashboards.board import ALL, PLACE_VARIABLES, BuiltDashboard
from dashboards.expand import TimeRange, Variable, expand


@dataclass(frozen=True)
class QueryResult:
    """One panel query's outcome: its columns and row count, or the error."""

    dashboard: str
    panel: str
    columns: tuple[str, ...]
    expected: tuple[str, ...]
    rows: int
    error: str | None = None


def all_places() -> dict[str, Variable]:
    """Every place variable set to All, as a dashboard opens."""
    return {name: Variable(name, all_selected=True, all_value=ALL) for name in PLACE_VARIABLES}


def check_queries(
    conn: psycopg.Connection,
    dashboards: list[BuiltDashboard],
    start: datetime,
    end: datetime,
    variables: dict[str, Variable] | None = None,
    timescaledb: bool = False,
) -> list[QueryResult]:
    """Expand and run every query (each in its own transaction, rolled back)."""
    # Grafana's interval for a ~1000-pixel-wide panel: the range over 1000, at least 1 s.
    interval = max(timedelta(seconds=round((end - start).total_seconds() / 1000)), timedelta(seconds=1))
    time_range = TimeRange(start, end, interval)
    chosen = variables or all_places()
    results: list[QueryResult] = []
    for built in dashboards:
        for panel in built.queries:
            sql = expand(panel.query.sql, chosen, time_range, timescaledb)
            try:
                with conn.transaction(force_rollback=True), conn.cursor() as cursor:
                    cursor.execute(sql.encode())
                    rows = cursor.fetchall()
                    columns = tuple(d.name for d in cursor.description or ())
            except psycopg.Error as exc:
                results.append(QueryResult(built.uid, panel.panel, (), panel.query.columns, 0,
                                           str(exc).splitlines()[0]))
                continue
            error = None if columns == panel.query.columns else (
                f"returned columns {columns}, the panel expects {panel.query.columns}")
            results.append(QueryResult(built.uid, panel.panel, columns, panel.query.columns,
                                       len(rows), error))
    return results
