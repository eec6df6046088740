"""Run one panel's query the way Grafana would and read its rows, for the panel tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from dashboards.board import BuiltDashboard
from dashboards.expand import TimeRange, Variable, expand


def panel_rows(
    url: str,
    dashboards: list[BuiltDashboard],
    title: str,
    variables: Mapping[str, Variable],
    time_range: TimeRange,
) -> list[dict[str, Any]]:
    """Run the panel (or variable, `$name`) with this title; rows as dicts."""
    (query,) = [q.query for b in dashboards for q in b.queries if q.panel == title][:1]
    sql = expand(query.sql, variables, time_range)
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(sql.encode())
        names = [d.name for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
