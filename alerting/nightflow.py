"""Night flow per area: the SQL that sums meters' use in the 02:00-04:00 hours (adapter)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from alerting.evaluate import Outcome, RuleBook, evaluate_night_flow
from alerting.model import Subject, fingerprint
from alerting.store import load_states

NIGHT_HOURS = (2, 3)  # local hours whose use is the night flow
NIGHT_ENDS = time(4, 0)
ZONE = ZoneInfo("Asia/Shanghai")

# Per meter and local hour, use is the register's rise within the hour (a register that went
# back contributes nothing); per area, the hours are summed; the night's minimum flow is the
# smaller of its two hours, in m³/h.
_NIGHTS_SQL = """
WITH hourly AS (
    SELECT d.township, d.village, d.grid,
           date_trunc('hour', r.ts AT TIME ZONE %(zone)s) AS hour,
           greatest(max(r.value) - min(r.value), 0) AS used
    FROM readings r JOIN devices d USING (device_id)
    WHERE d.kind = 'water_meter' AND d.lifecycle = 'active' AND r.metric = 'total_m3'
      AND r.ts >= %(since)s AND r.ts < %(until)s
      AND extract(hour FROM r.ts AT TIME ZONE %(zone)s) = ANY(%(hours)s)
    GROUP BY d.township, d.village, d.grid, r.device_id, 4
)
SELECT township, village, grid, hour::date AS night, hour, sum(used)
FROM hourly GROUP BY township, village, grid, night, hour
"""

AREA_KEYS: dict[str, tuple[int, ...]] = {"township": (0,), "village": (0, 1), "grid": (0, 1, 2)}


def last_complete_night(now: datetime) -> datetime:
    """The 04:00 (local) that ended the most recent night, as an aware time."""
    local = now.astimezone(ZONE)
    end = datetime.combine(local.date(), NIGHT_ENDS, ZONE)
    return end if local >= end else end - timedelta(days=1)


def area_nights(
    conn: psycopg.Connection, nights: int, now: datetime
) -> dict[str, dict[Subject, list[tuple[datetime, float]]]]:
    """Per area level, each area's nights (ending 04:00 local) and minimum night flow."""
    until = last_complete_night(now)
    rows = conn.execute(_NIGHTS_SQL, {"since": until - timedelta(days=nights), "until": until,
                                      "hours": list(NIGHT_HOURS), "zone": ZONE.key}).fetchall()
    result: dict[str, dict[Subject, list[tuple[datetime, float]]]] = {}
    for level, keys in AREA_KEYS.items():
        # area -> night -> the summed use of each of its night hours
        per_area: dict[tuple[str, ...], dict[date, list[float]]] = defaultdict(
            lambda: defaultdict(list))
        for row in rows:
            per_area[tuple(row[i] for i in keys)][row[3]].append(float(row[5]))
        areas: dict[Subject, list[tuple[datetime, float]]] = {}
        for area, per_night in per_area.items():
            place = dict(zip(("township", "village", "grid"), area, strict=False))
            subject = Subject(None, "water_meter", place.get("township"), place.get("village"),
                              place.get("grid"))
            # a night with only one of its hours seen is incomplete: left out
            areas[subject] = sorted(
                (datetime.combine(night, NIGHT_ENDS, ZONE), min(values))
                for night, values in per_night.items() if len(values) == len(NIGHT_HOURS)
            )
        result[level] = areas
    return result


def evaluate_areas(conn: psycopg.Connection, book: RuleBook, now: datetime) -> Outcome:
    """Judge every night-flow rule over the nights complete by `now`."""
    rules = book.of_type("night_flow")
    if not rules:
        return Outcome()
    nights = max(rule.condition.baseline_nights for rule in rules) + 2
    areas = area_nights(conn, nights, now)
    keys = [fingerprint(rule.name, subject) for rule in rules
            for subject in areas.get(rule.condition.area, {})]
    return evaluate_night_flow(book, areas, load_states(conn, keys))
