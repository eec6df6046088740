"""What every dashboard shares: the datasource, the place variables, panel placement,
column display names, and the record of each panel's query for the tests.

Pure: builds grafana-foundation-sdk objects and plain dicts; no I/O.
"""

# ruff: noqa: S608 - panel SQL is composed from constants in this code; the only
# runtime values ($township, $__timeFilter...) are filled in later by Grafana itself.

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, cast

from grafana_foundation_sdk.builders import dashboard as sdk
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from dashboards.i18n import COLUMN_LABELS, Language, Text
from dashboards.limits import COUNTY_TIMEZONE
from dashboards.query import DATASOURCE_TYPE, Query, SqlTarget, SqlTargetBuilder

# Grafana writes the base threshold step as null (-Infinity), which its own 11.6 JSON
# schema refuses; a base far below every metric's physical minimum behaves the same.
BASE = -1e9

# The custom "All" value: inserted raw, so `'*' IN ($township)` is true for All and a
# device without a township still shows (an IN list of every township would drop it).
ALL = "'*'"

PLACE_VARIABLES = ("township", "village", "site")
VARIABLE_LABELS = {
    "township": Text("乡镇", "Township"),
    "village": Text("行政村", "Village"),
    "site": Text("站点", "Site"),
}


def place_filter(alias: str = "d", names: tuple[str, ...] = PLACE_VARIABLES) -> str:
    """SQL that keeps devices (table alias `alias`) in the chosen places (township, village, site)."""
    return " AND ".join(f"('*' IN (${name}) OR {alias}.{name} IN (${name}))" for name in names)


# How a panel names one device: its site (or village), then its name (or id).
DEVICE_LABEL = "coalesce(d.site, d.village) || ' / ' || coalesce(d.name, d.device_id)"


def device_series(kind: str, metric: str, aggregate: str = "avg") -> Query:
    """One metric of every device of a kind in the chosen places, aggregated per Grafana interval."""
    return Query(
        f"""SELECT $__timeGroupAlias(r.ts, $__interval), {DEVICE_LABEL} AS metric, {aggregate}(r.value) AS {metric}
FROM readings r
JOIN devices d ON d.device_id = r.device_id
WHERE d.kind = '{kind}' AND r.metric = '{metric}' AND $__timeFilter(r.ts) AND {place_filter()}
GROUP BY 1, 2
ORDER BY 1""",
        ("time", "metric", metric),
        "time_series",
    )


def offline_count(kind: str) -> Query:
    """How many active devices of a kind in the chosen places are offline."""
    return Query(
        f"""SELECT count(*) AS devices
FROM device_status s
JOIN devices d ON d.device_id = s.device_id
WHERE s.kind = '{kind}' AND s.lifecycle = 'active' AND NOT s.online AND {place_filter()}""",
        ("devices",),
    )


def variable_queries() -> dict[str, Query]:
    """Each place variable's query over `devices`, each narrowed by the ones before it."""
    queries: dict[str, Query] = {}
    for index, name in enumerate(PLACE_VARIABLES):
        narrower = f" AND {place_filter('d', PLACE_VARIABLES[:index])}" if index else ""
        queries[name] = Query(
            f"SELECT DISTINCT d.{name} FROM devices d WHERE d.lifecycle = 'active'"
            f" AND d.{name} IS NOT NULL{narrower} ORDER BY 1",
            (name,),
        )
    return queries


def steps(*pairs: tuple[float, str]) -> Builder[model.ThresholdsConfig]:
    """Absolute thresholds from (value, colour) pairs; the first is the base colour."""
    return (
        sdk.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in pairs])
    )


class PanelBuilder(Protocol):
    """The part of every SDK panel builder a board uses."""

    def title(self, title: str) -> Self: ...  # noqa: D102
    def description(self, description: str) -> Self: ...  # noqa: D102
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...  # noqa: D102
    def with_target(self, target: Builder[Any]) -> Self: ...  # noqa: D102
    def grid_pos(self, grid_pos: model.GridPos) -> Self: ...  # noqa: D102
    def with_transformation(  # noqa: D102
        self, transformation: model.DataTransformerConfig
    ) -> Self: ...
    def build(self) -> model.Panel: ...  # noqa: D102


def column_matcher(column: str) -> model.MatcherConfig:
    """Matches a column by its SQL name or its display name in either language.

    Grafana's 11.6 schema wants matcher options to be an object, so `byNames`, not `byName`.
    """
    label = COLUMN_LABELS.get(column)
    names = [column, *(label or ())]
    return model.MatcherConfig(id_val="byNames", options={"mode": "include", "names": names})


@dataclass(frozen=True)
class PanelQuery:
    """A panel's title and its query, as the tests run them."""

    panel: str
    query: Query


@dataclass(frozen=True)
class BuiltDashboard:
    """A dashboard's JSON model with the queries of its panels and variables."""

    uid: str
    title: str
    model: dict[str, Any]
    queries: tuple[PanelQuery, ...]


@dataclass
class Board:
    """A dashboard under construction in one language."""

    uid: str
    title: Text
    language: Language
    datasource_uid: str
    tags: tuple[str, ...] = ()
    panels: list[Builder[model.Panel]] = field(default_factory=list)
    queries: list[PanelQuery] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def t(self, text: Text) -> str:
        """The text in this board's language."""
        return text.pick(self.language)

    @property
    def datasource(self) -> model.DataSourceRef:
        """The reference to our PostgreSQL datasource."""
        return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=self.datasource_uid)

    @property
    def kind_label(self) -> str:
        """The `device_kinds` column holding kind names in this language."""
        return f"label_{self.language}"

    def add(
        self,
        panel: PanelBuilder,
        title: Text,
        query: Query,
        width: int = 12,
        height: int = 8,
        description: Text | None = None,
        keep_names: tuple[str, ...] = (),
    ) -> None:
        """Place a panel (left to right, wrapping at 24 columns) with its query.

        A table query's columns are shown by their names in this board's language (the
        `organize` transformation), except `keep_names`, which the panel finds by SQL name
        (the geomap's coordinates and colour field).
        """
        if self._x + width > 24:
            self._x, self._y, self._row_height = 0, self._y + self._row_height, 0
        panel = (
            panel.title(self.t(title))
            .datasource(self.datasource)
            .with_target(SqlTargetBuilder(SqlTarget("A", query, self.datasource_uid)))
            .grid_pos(model.GridPos(h=height, w=width, x=self._x, y=self._y))
        )
        self._x += width
        self._row_height = max(self._row_height, height)
        if description is not None:
            panel = panel.description(self.t(description))
        renames = {
            c: self.t(COLUMN_LABELS[c])
            for c in query.columns
            if c in COLUMN_LABELS and c not in keep_names
        }
        if query.format == "table" and renames:
            panel = panel.with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={"renameByName": renames, "excludeByName": {}, "indexByName": {}},
                )
            )
        self.panels.append(cast(Builder[model.Panel], panel))
        self.queries.append(PanelQuery(self.t(title), query))

    def _variables(self) -> list[Builder[model.VariableModel]]:
        variables: list[Builder[model.VariableModel]] = []
        for name, query in variable_queries().items():
            variables.append(
                sdk.QueryVariable(name)
                .label(self.t(VARIABLE_LABELS[name]))
                .datasource(self.datasource)
                .query(query.sql)
                .multi(True)
                .include_all(True)
                .all_value(ALL)
                .current(model.VariableOption(selected=True, text="All", value="$__all"))
                .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
                .sort(model.VariableSort.ALPHABETICAL_ASC)
            )
        return variables

    def build(self) -> BuiltDashboard:
        """The JSON model Grafana imports, with every query the tests run."""
        builder = (
            sdk.Dashboard(self.t(self.title))
            .uid(self.uid)
            .tags(["smart-village", *self.tags])
            .timezone(COUNTY_TIMEZONE)
            .time("now-7d", "now")
            .refresh("5m")
            .editable()
            .variables(self._variables())
        )
        for panel in self.panels:
            builder = builder.with_panel(panel)
        encoded = JSONEncoder(sort_keys=True).encode(builder.build())
        variables = tuple(PanelQuery(f"${name}", query) for name, query in variable_queries().items())
        return BuiltDashboard(
            self.uid, self.t(self.title), json.loads(encoded), (*self.queries, *variables)
        )
