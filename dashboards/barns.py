"""Livestock barns: climate, gases against their species' limits, the temperature-humidity
index, and animal body temperature."""

# ruff: noqa: S608 - panel SQL is composed from constants in this code; the only
# runtime values ($township, $__timeFilter...) are filled in later by Grafana itself.

from __future__ import annotations

from dashboards import limits
from dashboards.board import (
    BASE,
    DEVICE_LABEL,
    Board,
    BuiltDashboard,
    device_series,
    offline_count,
    place_filter,
    steps,
)
from dashboards.i18n import Language, Text
from dashboards.panels import listing, series, single
from dashboards.query import Query

UID = "village-barns"

# A barn's species from its registry tags; untagged or unknown: the strictest limits.
SPECIES = (
    "CASE WHEN d.tags->>'species' IN ("
    + ", ".join(f"'{s}'" for s in sorted(next(iter(limits.GAS_LIMITS_MG_M3.values()))))
    + f") THEN d.tags->>'species' ELSE '{limits.DEFAULT_SPECIES}' END"
)
GASES = (
    ("nh3_ppm", Text("氨气 NH₃ (占限值 %)", "Ammonia NH₃ (% of limit)")),
    ("h2s_ppm", Text("硫化氢 H₂S (占限值 %)", "Hydrogen sulphide H₂S (% of limit)")),
    ("co2_ppm", Text("二氧化碳 CO₂ (占限值 %)", "Carbon dioxide CO₂ (% of limit)")),
)
PERCENT_OF_LIMIT = steps((BASE, "green"), (80, "orange"), (100, "red"))


def gas_limits_values() -> str:
    """A CTE `gas_limits(metric, species, limit_mg_m3, mg_per_ppm)` from NY/T 388."""
    rows = ",\n    ".join(
        f"('{metric}', '{species}', {limit}::double precision, "
        f"{limits.ppm_to_mg_m3(metric, 1.0)!r}::double precision)"
        for metric, per_species in limits.GAS_LIMITS_MG_M3.items()
        for species, limit in per_species.items()
    )
    return f"gas_limits (metric, species, limit_mg_m3, mg_per_ppm) AS (VALUES\n    {rows}\n)"


def thi_sql(temperature: str, humidity: str) -> str:
    """The temperature-humidity index as SQL over two expressions (see limits.thi)."""
    return f"((1.8 * {temperature} + 32) - (0.55 - 0.0055 * {humidity}) * (1.8 * {temperature} - 26))"


def gas_query(metric: str) -> Query:
    """The worst concentration of a gas per barn and interval, as % of its species' limit."""
    return Query(
        f"""WITH {gas_limits_values()}
SELECT $__timeGroupAlias(r.ts, $__interval), {DEVICE_LABEL} AS metric,
       max(r.value * g.mg_per_ppm / g.limit_mg_m3 * 100) AS pct_of_limit
FROM readings r
JOIN devices d ON d.device_id = r.device_id
JOIN gas_limits g ON g.metric = r.metric AND g.species = {SPECIES}
WHERE d.kind = 'barn' AND r.metric = '{metric}' AND $__timeFilter(r.ts) AND {place_filter()}
GROUP BY 1, 2
ORDER BY 1""",
        ("time", "metric", "pct_of_limit"),
        "time_series",
    )


def build(language: Language, datasource_uid: str) -> BuiltDashboard:
    """The barns dashboard."""
    board = Board(UID, Text("畜禽养殖环境", "Livestock barns"), language, datasource_uid,
                  ("barns",))
    board.add(
        single("none", steps((BASE, "green"), (1, "red"))),
        Text("失联畜舍", "Barns silent"),
        offline_count("barn"),
        width=6,
        height=6,
        description=Text("高温天畜舍传感器失联属紧急情况（通风可能断电）。",
                         "Barn sensors silent in a heat wave are an emergency "
                         "(ventilation may have lost power)."),
    )
    board.add(
        listing("pct_of_limit", PERCENT_OF_LIMIT),
        Text("当前气体浓度 (mg/m³, NY/T 388)", "Gases now (mg/m³, NY/T 388)"),
        Query(
            f"""WITH {gas_limits_values()}
SELECT {DEVICE_LABEL} AS site, {SPECIES} AS species, l.metric,
       round((l.value * g.mg_per_ppm)::numeric, 2) AS value, g.limit_mg_m3 AS limit,
       round((l.value * g.mg_per_ppm / g.limit_mg_m3 * 100)::numeric, 1) AS pct_of_limit,
       l.ts
FROM latest_values l
JOIN devices d ON d.device_id = l.device_id
JOIN gas_limits g ON g.metric = l.metric AND g.species = {SPECIES}
WHERE d.kind = 'barn' AND l.ts > $__timeTo()::timestamptz - INTERVAL '1 hour' AND {place_filter()}
ORDER BY d.device_id, l.metric""",
            ("site", "species", "metric", "value", "limit", "pct_of_limit", "ts"),
        ),
        width=18,
        height=6,
    )
    board.add(series("celsius"), Text("舍内温度", "Air temperature"),
              device_series("barn", "temperature_c"))
    board.add(series("percent"), Text("相对湿度", "Relative humidity"),
              device_series("barn", "humidity_pct"))
    for metric, title in GASES:
        board.add(series("percent", PERCENT_OF_LIMIT), title, gas_query(metric), width=8)
    temperature = "avg(r.value) FILTER (WHERE r.metric = 'temperature_c')"
    humidity = "avg(r.value) FILTER (WHERE r.metric = 'humidity_pct')"
    board.add(
        series(
            "none",
            steps((BASE, "green"), (limits.THI_MILD, "yellow"), (limits.THI_MODERATE, "orange"),
                  (limits.THI_SEVERE, "red")),
        ),
        Text("温湿指数 THI (牛热应激)", "Temperature-humidity index (cattle heat stress)"),
        Query(
            f"""SELECT $__timeGroupAlias(r.ts, $__interval), {DEVICE_LABEL} AS metric,
       {thi_sql(temperature, humidity)} AS thi
FROM readings r
JOIN devices d ON d.device_id = r.device_id
WHERE d.kind = 'barn' AND r.metric IN ('temperature_c', 'humidity_pct')
  AND $__timeFilter(r.ts) AND {place_filter()}
GROUP BY 1, 2
HAVING count(*) FILTER (WHERE r.metric = 'temperature_c') > 0
   AND count(*) FILTER (WHERE r.metric = 'humidity_pct') > 0
ORDER BY 1""",
            ("time", "metric", "thi"),
            "time_series",
        ),
        description=Text("THI>72 轻度, >79 中度, >89 重度热应激。",
                         "THI above 72 mild, above 79 moderate, above 89 severe heat stress."),
    )
    board.add(
        series(
            "celsius",
            steps((BASE, "green"), (limits.BODY_TEMP_WATCH_C, "orange"),
                  (limits.BODY_TEMP_VET_C, "red")),
        ),
        Text("动物体温 (最高)", "Animal body temperature (hottest)"),
        device_series("barn", "body_temp_c", "max"),
        description=Text("奶牛体温超过39.5 °C需关注，超过40.0 °C请兽医。",
                         "A dairy cow above 39.5 °C deserves a look, above 40.0 °C a call to the vet."),
    )
    return board.build()
