"""A panel's SQL query as Grafana's PostgreSQL datasource stores it, and what it returns.

grafana-foundation-sdk 11.6 has no builder for the PostgreSQL datasource's query, so this
is the one (a `Dataquery` variant, like the SDK's own per-datasource queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder

DATASOURCE_TYPE = "grafana-postgresql-datasource"
QueryFormat = Literal["time_series", "table"]


@dataclass(frozen=True)
class Query:
    """A panel's SQL with Grafana macros and variables, and the columns it must return."""

    sql: str
    columns: tuple[str, ...]
    format: QueryFormat = "table"


class SqlTarget(variants.Dataquery):
    """One `targets[]` entry of a panel on the PostgreSQL datasource (code mode)."""

    def __init__(self, ref_id: str, query: Query, datasource_uid: str) -> None:
        self.ref_id = ref_id
        self.query = query
        self.datasource_uid = datasource_uid

    def to_json(self) -> dict[str, object]:
        """The JSON Grafana stores for this query."""
        return {
            "refId": self.ref_id,
            "datasource": {"type": DATASOURCE_TYPE, "uid": self.datasource_uid},
            "editorMode": "code",
            "rawQuery": True,
            "format": self.query.format,
            "rawSql": self.query.sql,
        }


class SqlTargetBuilder(Builder[variants.Dataquery]):
    """Builder wrapper so SDK panels accept our target through `with_target`."""

    def __init__(self, target: SqlTarget) -> None:
        self._target = target

    def build(self) -> variants.Dataquery:
        """The target."""
        return self._target
