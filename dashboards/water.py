"""Water operations: consumption by place and day, top consumers, leak suspects, night flow,
meters not reporting, meters' own alarms, and batteries."""

# ruff: noqa: S608 - panel SQL is composed from constants in this code; the only
# runtime values ($township, $__timeFilter...) are filled in later by Grafana itself.

from __future__ import annotations

from dashboards import limits
from dashboards.board import BASE, Board, BuiltDashboard, offline_count, place_filter, steps
from dashboards.i18n import Language, Text
from dashboards.panels import listing, series, single
from dashboards.query import Query

UID = "village-water"
TZ = limits.COUNTY_TIMEZONE


def daily_use() -> str:
    """CTEs ending in `used(device_id, bucket, m3)`: each meter's use per county day.

    Use is the rise of the day's last register over the previous day's. A register that went
    back is a swap or reset, never negative use: that day counts the old register's rise to
    its highest value plus the new register's rise from its lowest (where it started).
    """
    return f"""daily AS (
    SELECT r.device_id, r.bucket, r.first, r.last, r.min, r.max,
           lag(r.last) OVER (PARTITION BY r.device_id ORDER BY r.bucket) AS previous
    FROM readings_daily r
    JOIN devices d ON d.device_id = r.device_id
    WHERE r.metric = 'total_m3' AND d.kind = 'water_meter' AND {place_filter()}
      AND r.bucket >= $__timeFrom()::timestamptz - INTERVAL '1 day'
      AND r.bucket <= $__timeTo()::timestamptz
),
used AS (
    SELECT device_id, bucket,
           CASE WHEN previous IS NULL THEN greatest(last - first, 0)
                WHEN last < previous THEN greatest(max - previous, 0) + greatest(last - min, 0)
                ELSE last - previous END AS m3
    FROM daily
    WHERE $__timeFilter(bucket)
)"""


def hourly_use(start: str, local_hours: tuple[int, ...] = ()) -> str:
    """A CTE `hourly(device_id, bucket, m3)`: each meter's use in each whole hour.

    The hour still under way is left out: its use so far would pass for a quiet hour.

    Only consecutive hourly buckets give an hour's use, so a gap or a swap is no reading;
    `local_hours` keeps only those county hours (and the hour before each).
    """
    hours = ""
    if local_hours:
        wanted = sorted({h for hour in local_hours for h in ((hour - 1) % 24, hour)})
        hours = (
            f"\n      AND extract(hour FROM h.bucket AT TIME ZONE '{TZ}') IN "
            f"({', '.join(str(h) for h in wanted)})"
        )
    return f"""steps AS (
    SELECT h.device_id, h.bucket,
           h.last - lag(h.last) OVER w AS m3,
           h.bucket - lag(h.bucket) OVER w AS span
    FROM readings_hourly h
    JOIN devices d ON d.device_id = h.device_id
    WHERE h.metric = 'total_m3' AND d.kind = 'water_meter' AND {place_filter()}
      AND h.bucket >= {start} AND h.bucket + INTERVAL '1 hour' <= $__timeTo()::timestamptz{hours}
    WINDOW w AS (PARTITION BY h.device_id ORDER BY h.bucket)
),
hourly AS (
    SELECT device_id, bucket, m3 FROM steps WHERE span = INTERVAL '1 hour' AND m3 >= 0
)"""


def build(language: Language, datasource_uid: str) -> BuiltDashboard:
    """The water operations dashboard."""
    board = Board(UID, Text("供水运行", "Water operations"), language, datasource_uid, ("water",))
    board.add(
        single("m3"),
        Text("所选时段总用水量", "Total consumption in the range"),
        Query(f"WITH {daily_use()}\nSELECT sum(m3) AS consumption_m3 FROM used", ("consumption_m3",)),
        width=6,
        height=5,
    )
    board.add(
        single("none", steps((BASE, "green"), (1, "red"))),
        Text("疑似漏水户", "Leak suspects"),
        Query(f"WITH {leak_suspects_sql()}\nSELECT count(*) AS devices FROM suspects", ("devices",)),
        width=6,
        height=5,
    )
    board.add(
        single("none", steps((BASE, "green"), (1, "orange"))),
        Text("未上报水表数", "Meters not reporting"),
        offline_count("water_meter"),
        width=6,
        height=5,
    )
    board.add(
        single("none", steps((BASE, "green"), (1, "orange"))),
        Text("电池电量低", "Low batteries"),
        Query(
            f"WITH {latest_battery()}\nSELECT count(*) AS devices FROM battery "
            f"WHERE battery_v < {limits.BATTERY_LOW_V}",
            ("devices",),
        ),
        width=6,
        height=5,
    )
    board.add(
        series("m3", bars=True),
        Text("各乡镇每日用水量", "Daily consumption per township"),
        Query(
            f"""WITH {daily_use()}
SELECT u.bucket AS time, coalesce(d.township, '-') AS metric, sum(u.m3) AS consumption_m3
FROM used u
JOIN devices d ON d.device_id = u.device_id
GROUP BY 1, 2
ORDER BY 1""",
            ("time", "metric", "consumption_m3"),
            "time_series",
        ),
        width=24,
    )
    board.add(
        listing(),
        Text("各村每日用水量", "Daily consumption per village"),
        Query(
            f"""WITH {daily_use()}
SELECT u.bucket AS day, d.township, d.village,
       count(DISTINCT u.device_id) AS meters, round(sum(u.m3)::numeric, 3) AS consumption_m3
FROM used u
JOIN devices d ON d.device_id = u.device_id
GROUP BY 1, 2, 3
ORDER BY 1 DESC, 5 DESC""",
            ("day", "township", "village", "meters", "consumption_m3"),
        ),
    )
    board.add(
        listing(),
        Text("用水大户 (前20)", "Top consumers (20)"),
        Query(
            f"""WITH {daily_use()}
SELECT d.device_id, d.name, d.village, round(sum(u.m3)::numeric, 3) AS consumption_m3
FROM used u
JOIN devices d ON d.device_id = u.device_id
GROUP BY 1, 2, 3
ORDER BY 4 DESC
LIMIT 20""",
            ("device_id", "name", "village", "consumption_m3"),
        ),
    )
    board.add(
        listing("min_hourly_m3", steps((BASE, "orange"), (0.01, "red"))),
        Text("疑似漏水 (24小时无零用水小时)", "Leak suspects (no zero-use hour in 24 h)"),
        Query(
            f"""WITH {leak_suspects_sql()}
SELECT device_id, name, village, hours, min_hourly_m3, last_24h_m3, last_seen
FROM suspects
ORDER BY min_hourly_m3 DESC
LIMIT 200""",
            ("device_id", "name", "village", "hours", "min_hourly_m3", "last_24h_m3", "last_seen"),
        ),
        description=Text(
            "每户最近24小时(按其最新数据)每小时都有用水，很可能漏水（马桶、水龙头、爆管）。",
            "Households whose every hour in their latest 24 h of data used water: very likely a leak.",
        ),
    )
    board.add(
        series("suffix:m³/h"),
        Text("夜间最小流量 (02:00-04:00)", "Minimum night flow (02:00-04:00)"),
        Query(
            f"""WITH {hourly_use("$__timeFrom()::timestamptz - INTERVAL '1 day'", limits.NIGHT_HOURS)},
area AS (
    SELECT d.village, h.bucket, sum(h.m3) AS m3
    FROM hourly h
    JOIN devices d ON d.device_id = h.device_id
    WHERE extract(hour FROM h.bucket AT TIME ZONE '{TZ}') IN ({", ".join(map(str, limits.NIGHT_HOURS))})
      AND $__timeFilter(h.bucket)
    GROUP BY 1, 2
)
SELECT date_trunc('day', bucket, '{TZ}') AS time, village AS metric, min(m3) AS night_flow_m3h
FROM area
GROUP BY 1, 2
ORDER BY 1""",
            ("time", "metric", "night_flow_m3h"),
            "time_series",
        ),
        description=Text(
            "每村夜间每小时用水之和的最小值；与本村以往相比突然上升，说明管网可能漏水。",
            "Each village's smallest hourly total at night; a sudden rise over its own "
            "baseline points at a distribution leak.",
        ),
    )
    board.add(
        listing(),
        Text("水表自报告警", "Meters' own alarms"),
        Query(
            f"""SELECT e.ts, d.device_id, d.name, d.village, e.type, e.severity
FROM events e
JOIN devices d ON d.device_id = e.device_id
WHERE d.kind = 'water_meter' AND $__timeFilter(e.ts) AND {place_filter()}
ORDER BY e.ts DESC
LIMIT 500""",
            ("ts", "device_id", "name", "village", "type", "severity"),
        ),
    )
    board.add(
        listing(),
        Text("未上报水表列表", "Meters not reporting, longest silent first"),
        Query(
            f"""SELECT s.device_id, d.name, s.township, s.village, s.last_seen,
       round((extract(epoch FROM now() - s.last_seen) / 3600)::numeric, 1) AS silent_h,
       s.reported_state
FROM device_status s
JOIN devices d ON d.device_id = s.device_id
WHERE s.kind = 'water_meter' AND s.lifecycle = 'active' AND NOT s.online AND {place_filter()}
ORDER BY s.last_seen NULLS FIRST
LIMIT 500""",
            ("device_id", "name", "township", "village", "last_seen", "silent_h", "reported_state"),
        ),
    )
    board.add(
        listing(
            "battery_v",
            steps(
                (BASE, "red"),
                (limits.BATTERY_CRITICAL_V, "orange"),
                (limits.BATTERY_LOW_V, "green"),
            ),
        ),
        Text("电池电压最低的水表", "Lowest meter batteries"),
        Query(
            f"""WITH {latest_battery()}
SELECT device_id, name, village, battery_v
FROM battery
ORDER BY battery_v
LIMIT 50""",
            ("device_id", "name", "village", "battery_v"),
        ),
    )
    return board.build()


def leak_suspects_sql() -> str:
    """CTEs ending in `suspects`: meters with no zero-use hour in their latest 24 hours."""
    window = limits.LEAK_WINDOW_HOURS
    return f"""{hourly_use(f"$__timeTo()::timestamptz - INTERVAL '{2 * window + 1} hours'")},
latest AS (
    SELECT device_id, bucket, m3, max(bucket) OVER (PARTITION BY device_id) AS newest
    FROM hourly
),
suspects AS (
    SELECT d.device_id, d.name, d.village, count(*) AS hours,
           round(min(l.m3)::numeric, 4) AS min_hourly_m3,
           round(sum(l.m3)::numeric, 3) AS last_24h_m3, max(l.bucket) AS last_seen
    FROM latest l
    JOIN devices d ON d.device_id = l.device_id
    WHERE l.bucket > l.newest - INTERVAL '{window} hours'
    GROUP BY 1, 2, 3
    HAVING count(*) >= {limits.LEAK_MIN_HOURS} AND min(l.m3) >= {limits.ZERO_HOUR_M3}
)"""


def latest_battery() -> str:
    """A CTE `battery(device_id, name, village, battery_v)`: each meter's latest voltage
    (from latest_values: one row per meter; meters silent for three days are left out)."""
    return f"""battery AS (
    SELECT l.device_id, d.name, d.village, l.value AS battery_v
    FROM latest_values l
    JOIN devices d ON d.device_id = l.device_id
    WHERE l.metric = 'battery_v' AND d.kind = 'water_meter' AND {place_filter()}
      AND l.ts > $__timeTo()::timestamptz - INTERVAL '3 days'
)"""
