"""Water quality: each station's parameters against the GB 5749 limits, and exceedances."""

# ruff: noqa: S608 - panel SQL is composed from constants in this code; the only
# runtime values ($township, $__timeFilter...) are filled in later by Grafana itself.

from __future__ import annotations

from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import ThresholdsConfig

from dashboards import limits
from dashboards.board import (
    BASE,
    DEVICE_LABEL,
    Board,
    BuiltDashboard,
    device_series,
    place_filter,
    steps,
)
from dashboards.i18n import Language, Text
from dashboards.panels import listing, series, single
from dashboards.query import Query

UID = "village-quality"


def _sql_number(value: float | None) -> str:
    return "NULL::double precision" if value is None else f"{value}::double precision"


def limits_values() -> str:
    """A CTE `limits(metric, limit_low, limit_high)` from the drinking-water bands."""
    rows = ",\n    ".join(
        f"('{metric}', {_sql_number(band.low)}, {_sql_number(band.high)})"
        for metric, band in limits.DRINKING_WATER.items()
    )
    return f"limits (metric, limit_low, limit_high) AS (VALUES\n    {rows}\n)"


# (metric, title, Grafana unit, thresholds drawn on the panel)
PARAMETERS: tuple[tuple[str, Text, str, Builder[ThresholdsConfig] | None], ...] = (
    (
        "ph",
        Text("pH 值 (6.5-8.5)", "pH (6.5-8.5)"),
        "none",
        steps((BASE, "red"), (limits.PH_LOW, "green"), (limits.PH_HIGH, "red")),
    ),
    (
        "turbidity_ntu",
        Text("浊度 (≤1 NTU)", "Turbidity (≤1 NTU)"),
        "suffix: NTU",
        steps((BASE, "green"), (limits.TURBIDITY_MAX_NTU, "orange"),
              (limits.TURBIDITY_CRITICAL_NTU, "red")),
    ),
    (
        "chlorine_mg_l",
        Text("游离余氯 (≥0.05 mg/L)", "Free chlorine (≥0.05 mg/L)"),
        "suffix: mg/L",
        steps((BASE, "red"), (limits.CHLORINE_MIN_MG_L, "green"),
              (limits.CHLORINE_MAX_MG_L, "orange")),
    ),
    (
        "dissolved_oxygen_mg_l",
        Text("溶解氧", "Dissolved oxygen"),
        "suffix: mg/L",
        steps((BASE, "red"), (limits.DISSOLVED_OXYGEN_DANGER_MG_L, "orange"),
              (limits.DISSOLVED_OXYGEN_WARN_MG_L, "green")),
    ),
    ("conductivity_us_cm", Text("电导率 (溶解性总固体)", "Conductivity (TDS proxy)"), "suffix: µS/cm", None),
    ("temperature_c", Text("水温", "Water temperature"), "celsius", None),
)


def build(language: Language, datasource_uid: str) -> BuiltDashboard:
    """The water-quality dashboard."""
    board = Board(UID, Text("饮用水水质", "Drinking-water quality"), language, datasource_uid,
                  ("water", "quality"))
    exceedances = f"""WITH {limits_values()}
SELECT {DEVICE_LABEL} AS site, r.metric, l.limit_low, l.limit_high, count(*) AS readings_outside,
       CASE WHEN l.limit_low IS NOT NULL AND min(r.value) < l.limit_low THEN min(r.value)
            ELSE max(r.value) END AS worst,
       min(r.ts) AS first_ts, max(r.ts) AS last_ts
FROM readings r
JOIN devices d ON d.device_id = r.device_id
JOIN limits l ON l.metric = r.metric
WHERE d.kind = 'water_quality' AND $__timeFilter(r.ts) AND {place_filter()}
  AND (r.value < l.limit_low OR r.value > l.limit_high)
GROUP BY 1, 2, 3, 4"""
    board.add(
        single("none", steps((BASE, "green"), (1, "red"))),
        Text("超标站点", "Stations out of limits"),
        Query(f"SELECT count(DISTINCT site) AS devices FROM ({exceedances}) x", ("devices",)),
        width=6,
        height=6,
    )
    board.add(
        listing("readings_outside", steps((BASE, "orange"), (10, "red"))),
        Text("超标记录 (GB 5749-2022)", "Exceedances (GB 5749-2022)"),
        Query(
            f"{exceedances}\nORDER BY last_ts DESC",
            ("site", "metric", "limit_low", "limit_high", "readings_outside", "worst",
             "first_ts", "last_ts"),
        ),
        width=18,
        height=6,
    )
    for metric, title, unit, thresholds in PARAMETERS:
        board.add(series(unit, thresholds), title, device_series("water_quality", metric))
    return board.build()
