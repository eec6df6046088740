"""Prometheus exposition of the service's state, computed from SQL at each scrape.

Each metric is a query whose last column is the value and whose other columns are labels.
A metric whose tables do not exist in this database (a capability not installed) is left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gauge:
    """One exported gauge and the query that measures it."""

    name: str
    help: str
    query: str
    needs: tuple[str, ...] = ()  # relations that must exist


GAUGES: tuple[Gauge, ...] = (
    Gauge("village_ingest_readings_per_second",
          "readings stored per second over the last 5 minutes",
          "SELECT count(*) / 300.0 FROM readings WHERE received_at > now() - INTERVAL '5 minutes'"),
    Gauge("village_ingest_lag_seconds",
          "mean delay from device time to storage of readings stored in the last 5 minutes",
          "SELECT coalesce(extract(epoch FROM avg(received_at - ts)), 0) FROM readings"
          " WHERE received_at > now() - INTERVAL '5 minutes'"),
    Gauge("village_ingest_last_stored_age_seconds",
          "seconds since the newest stored reading (NaN if none)",
          "SELECT coalesce(extract(epoch FROM now() - max(received_at)), 'NaN') FROM readings"
          " WHERE received_at > now() - INTERVAL '1 day'"),
    Gauge("village_dead_letters", "dead letters kept, by reason",
          "SELECT reason, count(*) FROM dead_letters GROUP BY reason"),
    Gauge("village_dead_letters_last_hour", "dead letters received in the last hour",
          "SELECT count(*) FROM dead_letters WHERE received_at > now() - INTERVAL '1 hour'"),
    Gauge("village_devices", "registered active devices by kind and presence",
          "SELECT kind, CASE WHEN online THEN 'online' ELSE 'offline' END AS status, count(*)"
          " FROM device_status WHERE lifecycle = 'active' GROUP BY 1, 2"),
    Gauge("village_alerts_open", "firing alerts by severity and whether acknowledged",
          "SELECT severity, (acknowledged_at IS NOT NULL)::text AS acknowledged, count(*)"
          " FROM alerts WHERE state = 'firing' GROUP BY 1, 2", needs=("alerts",)),
    Gauge("village_notifications_failed_last_day",
          "notifications that failed for good in the last 24 hours, by channel",
          "SELECT channel, count(*) FROM notifications WHERE status = 'failed'"
          " AND created_at > now() - INTERVAL '1 day' GROUP BY 1", needs=("notifications",)),
    Gauge("village_broadcasts", "broadcasts by status",
          "SELECT status, count(*) FROM broadcasts GROUP BY 1", needs=("broadcasts",)),
    Gauge("village_broadcast_deliveries_open", "speaker deliveries not yet final, by state",
          "SELECT state, count(*) FROM broadcast_deliveries"
          " WHERE state IN ('queued', 'held', 'offline', 'sent', 'accepted') GROUP BY 1",
          needs=("broadcast_deliveries",)),
)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return "NaN" if math.isnan(number) else repr(number)


def render(gauge: Gauge, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The text exposition of one gauge's rows (labels first, value last)."""
    lines = [f"# HELP {gauge.name} {gauge.help}", f"# TYPE {gauge.name} gauge"]
    for row in rows:
        labels = ",".join(f'{name}="{_escape(value)}"' for name, value in zip(columns, row[:-1], strict=False))
        lines.append(f"{gauge.name}{{{labels}}} {_number(row[-1])}" if labels
                     else f"{gauge.name} {_number(row[-1])}")
    return "\n".join(lines) + "\n"


def scrape(conn: psycopg.Connection) -> str:
    """Every available gauge, measured now, in Prometheus text format."""
    out = []
    for gauge in GAUGES:
        if any(conn.execute("SELECT to_regclass(%s) IS NULL", (name,)).fetchone()[0]  # type: ignore[index]
               for name in gauge.needs):
            continue
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(gauge.query.encode())
                columns = [c.name for c in cur.description or ()]
                rows = cur.fetchall()
        except psycopg.errors.UndefinedColumn:
            # Another capability's table has another shape than expected: skip, say so.
            log.warning("metric %s skipped: its query does not fit the schema", gauge.name)
            continue
        out.append(render(gauge, columns[:-1], rows))
    return "".join(out)
