"""Alerts and broadcasts: firing by place and severity, time to acknowledge, notifications,
broadcasts and their delivery to each speaker."""

# ruff: noqa: S608 - panel SQL is composed from constants in this code; the only
# runtime values ($township, $__timeFilter...) are filled in later by Grafana itself.

from __future__ import annotations

from dashboards.board import BASE, Board, BuiltDashboard, place_filter, steps
from dashboards.i18n import COLUMN_LABELS, Language, Text
from dashboards.panels import bars, listing, series, single
from dashboards.query import Query

UID = "village-alerts"
SEVERITIES = ("critical", "major", "minor", "info")


def by_severity(alias: str = "a") -> str:
    """One count column per severity, most severe first."""
    return ", ".join(
        f"count(*) FILTER (WHERE {alias}.severity = '{s}') AS {s}" for s in SEVERITIES
    )


def broadcast_place(alias: str = "b") -> str:
    """Broadcasts reaching the chosen place: theirs, or wider (a county-wide one has none)."""
    return " AND ".join(
        f"('*' IN (${name}) OR {alias}.place_{name} IS NULL OR {alias}.place_{name} IN (${name}))"
        for name in ("township", "village")
    )


def build(language: Language, datasource_uid: str) -> BuiltDashboard:
    """The alerts-and-broadcasts dashboard."""
    board = Board(UID, Text("告警与广播", "Alerts and broadcasts"), language, datasource_uid,
                  ("alerts", "broadcast"))
    board.add(
        single("none", steps((BASE, "green"), (1, "red"))),
        Text("正在告警 (按级别)", "Firing now (by severity)"),
        Query(
            f"SELECT {by_severity()}\nFROM alerts a\nWHERE a.state = 'firing' AND {place_filter('a')}",
            SEVERITIES,
        ),
        width=8,
        height=6,
    )
    board.add(
        bars(board.t(COLUMN_LABELS["village"])),
        Text("各村正在告警", "Firing by village"),
        Query(
            f"""SELECT coalesce(a.village, '-') AS village, {by_severity()}
FROM alerts a
WHERE a.state = 'firing' AND {place_filter('a')}
GROUP BY 1
ORDER BY 1""",
            ("village", *SEVERITIES),
        ),
        width=16,
        height=6,
    )
    board.add(
        series("short", bars=True),
        Text("新告警 (按级别)", "New alerts by severity"),
        Query(
            f"""SELECT $__timeGroupAlias(a.fired_at, $__interval), a.severity AS metric, count(*) AS alerts
FROM alerts a
WHERE $__timeFilter(a.fired_at) AND {place_filter('a')}
GROUP BY 1, 2
ORDER BY 1""",
            ("time", "metric", "alerts"),
            "time_series",
        ),
    )
    board.add(
        listing("median_ack_min", steps((BASE, "green"), (30, "orange"), (120, "red"))),
        Text("确认用时", "Time to acknowledge"),
        Query(
            f"""SELECT a.severity, count(*) AS alerts, count(a.acknowledged_at) AS acknowledged,
       round((percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM a.acknowledged_at - a.fired_at) / 60))::numeric, 1)
           AS median_ack_min,
       round((percentile_cont(0.9) WITHIN GROUP (
           ORDER BY extract(epoch FROM a.acknowledged_at - a.fired_at) / 60))::numeric, 1)
           AS p90_ack_min
FROM alerts a
WHERE $__timeFilter(a.fired_at) AND {place_filter('a')}
GROUP BY 1
ORDER BY array_position(ARRAY{list(SEVERITIES)!r}::text[], a.severity)""",
            ("severity", "alerts", "acknowledged", "median_ack_min", "p90_ack_min"),
        ),
    )
    board.add(
        listing(),
        Text("正在告警列表", "Firing alerts"),
        Query(
            f"""SELECT a.fired_at AS started_at, a.severity, a.rule, a.summary, a.township, a.village,
       a.device_id, a.value, a.acknowledged_at, a.acknowledged_by
FROM alerts a
WHERE a.state = 'firing' AND {place_filter('a')}
ORDER BY array_position(ARRAY{list(SEVERITIES)!r}::text[], a.severity), a.fired_at DESC
LIMIT 500""",
            ("started_at", "severity", "rule", "summary", "township", "village", "device_id",
             "value", "acknowledged_at", "acknowledged_by"),
        ),
        width=24,
    )
    board.add(
        listing("failed", steps((BASE, "green"), (1, "red"))),
        Text("通知发送 (按渠道)", "Notifications by channel"),
        Query(
            """SELECT n.channel, count(*) FILTER (WHERE n.status = 'sent') AS sent,
       count(*) FILTER (WHERE n.status = 'failed') AS failed
FROM notifications n
WHERE $__timeFilter(n.created_at)
GROUP BY 1
ORDER BY 1""",
            ("channel", "sent", "failed"),
        ),
        description=Text("全县范围，不按地点筛选。", "County-wide: not filtered by place."),
    )
    board.add(
        listing("not_confirmed", steps((BASE, "green"), (1, "red"))),
        Text("广播及送达", "Broadcasts and their delivery"),
        Query(
            f"""SELECT r.created_at, r.priority, r.scope_label AS scope, r.created_by, r.status,
       r.speakers, r.confirmed, r.speakers - r.confirmed AS not_confirmed
FROM broadcast_report r
JOIN broadcasts b ON b.broadcast_id = r.broadcast_id
WHERE $__timeFilter(r.created_at) AND {broadcast_place()}
ORDER BY r.created_at DESC
LIMIT 200""",
            ("created_at", "priority", "scope", "created_by", "status", "speakers", "confirmed",
             "not_confirmed"),
        ),
        width=24,
    )
    board.add(
        listing(),
        Text("未确认播放的喇叭", "Speakers that did not confirm"),
        Query(
            """SELECT b.created_at, b.priority, u.device_id, u.township, u.village, u.state,
       u.reason, u.attempts, u.last_sent_at
FROM broadcast_unconfirmed u
JOIN broadcasts b ON b.broadcast_id = u.broadcast_id
WHERE $__timeFilter(b.created_at)
  AND ('*' IN ($township) OR u.township IN ($township))
  AND ('*' IN ($village) OR u.village IN ($village))
ORDER BY b.created_at DESC, u.village, u.device_id
LIMIT 500""",
            ("created_at", "priority", "device_id", "township", "village", "state", "reason",
             "attempts", "last_sent_at"),
        ),
        width=24,
    )
    return board.build()
