"""Telemetry queries: latest values, a device's series, per-place aggregates.

Buckets of an hour and a day come from the rollups (`readings_hourly`, `readings_daily`,
days in Asia/Shanghai); shorter ones are computed from raw readings. `delta` is the
growth of a register (`total_m3`): a bucket's last value minus the one before it; a
register that goes back (a meter swap) counts as no use rather than negative use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

from devices.catalogue import kind_named
from devices.store import scope_conditions
from ground.durations import duration_text
from ground.errors import Invalid
from ground.principal import Principal


class Bucket(StrEnum):
    """Series resolutions."""

    RAW = "raw"
    MIN_1 = "1m"
    MIN_5 = "5m"
    MIN_15 = "15m"
    HOUR_1 = "1h"
    DAY_1 = "1d"


class Agg(StrEnum):
    """How a bucket's readings become one value."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    DELTA = "delta"


class PlaceLevel(StrEnum):
    """The level per-place aggregates group by."""

    TOWNSHIP = "township"
    VILLAGE = "village"


class RangeError(ValueError):
    """A time range or resolution out of bounds; `field` names the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Source:
    """Where a resolution's buckets come from."""

    width: timedelta
    rollup: str | None  # a rollup table, or None for buckets computed from raw readings


SOURCES: dict[Bucket, Source] = {
    Bucket.RAW: Source(timedelta(0), None),
    Bucket.MIN_1: Source(timedelta(minutes=1), None),
    Bucket.MIN_5: Source(timedelta(minutes=5), None),
    Bucket.MIN_15: Source(timedelta(minutes=15), None),
    Bucket.HOUR_1: Source(timedelta(hours=1), "readings_hourly"),
    Bucket.DAY_1: Source(timedelta(days=1), "readings_daily"),
}

# Raw buckets are aligned on the county's midnight, as the daily rollup is.
_ORIGIN = "2000-01-01 00:00:00+08"

# One expression for a register's growth in a bucket, used by series and place queries.
_DELTA = ("CASE WHEN prev IS NULL THEN last - first WHEN last >= prev THEN last - prev"
          " ELSE greatest(last - first, 0) END")

_AGG_EXPR: dict[Agg, str] = {
    Agg.AVG: "avg", Agg.MIN: "min", Agg.MAX: "max", Agg.LAST: "last", Agg.DELTA: _DELTA,
}


# Times outside these are typing mistakes, and would overflow date arithmetic near year 1.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """How much one request may ask for."""

    max_range: timedelta
    max_raw_range: timedelta
    max_points: int


def check_range(start: datetime, end: datetime, bucket: Bucket, limits: Limits) -> None:
    """Refuse a range that is empty, unbounded in time zone, too long, or too many points."""
    for field, value in (("query.from", start), ("query.to", end)):
        if value.tzinfo is None:
            raise RangeError(field, "needs a time zone (e.g. 2026-01-01T00:00:00+08:00)")
        if not EARLIEST <= value <= LATEST:
            raise RangeError(field, f"must lie between {EARLIEST:%Y} and {LATEST:%Y}")
    if end <= start:
        raise RangeError("query.to", "must be after `from`")
    span = end - start
    longest = limits.max_raw_range if bucket is Bucket.RAW else limits.max_range
    if span > longest:
        raise RangeError("query.from", f"the range may span at most "
                         f"{duration_text(longest.total_seconds(), 'en')} for bucket {bucket}")
    width = SOURCES[bucket].width
    if width and span / width > limits.max_points:
        raise RangeError("query.bucket", f"more than {limits.max_points} buckets; use a wider one")


def _bucketed(source: Source) -> sql.Composable:
    """Per-bucket first/last/min/max/avg of one device's metric, with the previous last."""
    inner: sql.Composable
    if source.rollup:
        inner = sql.SQL(
            "SELECT bucket, first, last, min, max, avg FROM {} WHERE device_id = %(device)s"
            " AND metric = %(metric)s AND bucket >= %(wide_from)s AND bucket < %(to)s"
        ).format(sql.Identifier(source.rollup))
    else:
        inner = sql.SQL(
            "SELECT date_bin(%(width)s, ts, %(origin)s::timestamptz) AS bucket,"
            " (array_agg(value ORDER BY ts))[1] AS first,"
            " (array_agg(value ORDER BY ts DESC))[1] AS last,"
            " min(value) AS min, max(value) AS max, avg(value) AS avg"
            " FROM readings WHERE device_id = %(device)s AND metric = %(metric)s"
            " AND ts >= %(wide_from)s AND ts < %(to)s GROUP BY 1"
        )
    return sql.SQL(
        "SELECT *, lag(last) OVER (ORDER BY bucket) AS prev FROM ({}) b"
    ).format(inner)


def series(conn: psycopg.Connection, device_id: str, metric: str, start: datetime,
           end: datetime, bucket: Bucket, agg: Agg, limits: Limits) -> list[tuple[datetime, float]]:
    """A device's metric over [start, end) at a resolution, as (time, value) pairs."""
    check_range(start, end, bucket, limits)
    if bucket is Bucket.RAW:
        rows = conn.execute(
            "SELECT ts, value FROM readings WHERE device_id = %s AND metric = %s"
            " AND ts >= %s AND ts < %s ORDER BY ts LIMIT %s",
            (device_id, metric, start, end, limits.max_points + 1),
        ).fetchall()
        if len(rows) > limits.max_points:
            raise RangeError("query.bucket", f"more than {limits.max_points} readings; use a bucket")
        return [(ts, value) for ts, value in rows]
    source = SOURCES[bucket]
    query = sql.SQL("SELECT bucket, {} FROM ({}) s WHERE bucket >= %(from)s ORDER BY bucket").format(
        sql.SQL(_AGG_EXPR[agg]), _bucketed(source))
    params = {"device": device_id, "metric": metric, "from": start, "to": end,
              "wide_from": start - source.width, "width": source.width, "origin": _ORIGIN}
    return [(b, v) for b, v in conn.execute(query, params).fetchall()]


# Not frozen: a page builds 2,000 of them, and a frozen dataclass costs six times as much
# to build (each field set through object.__setattr__). No slots: orjson encodes from
# __dict__ three times as fast.
@dataclass
class LatestValue:
    """One device's newest reading of one metric."""

    device_id: str
    kind: str
    township: str | None
    village: str
    metric: str
    ts: datetime
    value: float
    received_at: datetime  # when the platform stored it


@dataclass(frozen=True)
class LatestFilter:
    """Which devices and metric a latest-values request covers (every field optional)."""

    kind: str | None = None
    township: str | None = None
    village: str | None = None
    device_id: str | None = None
    metric: str | None = None


@dataclass(frozen=True)
class LatestValues:
    """The newest values of a page of devices; `next_after` is None on the last page."""

    values: list[LatestValue]
    next_after: str | None


def _devices_in(principal: Principal, where: LatestFilter,
                after: str | None) -> tuple[sql.Composable, list[Any]]:
    """Devices (alias `d`) in the principal's scope matching the filter, after `after`."""
    columns = ("kind", "township", "village", "device_id")
    return scope_conditions(principal, "d", {c: getattr(where, c) for c in columns}, after)


def latest(conn: psycopg.Connection, principal: Principal, where: LatestFilter,
           after: str | None, limit: int) -> LatestValues:
    """The newest reading of every metric of a page of devices in scope (ordered by id).

    Read from `latest_values`, which ingest keeps in the readings' own transactions.
    """
    condition, params = _devices_in(principal, where, after)
    metric_filter = sql.SQL("AND l.metric = %s") if where.metric is not None else sql.SQL("")
    # The page's size and last device come in a row of their own, so a page of devices
    # without values still moves the cursor on. Each device's values are found through the
    # primary key, and only then checked against the kind's metrics (one hash for the page):
    # the inner OFFSET 0 keeps the planner from hashing the whole table (a million rows at
    # ten counties), the outer one from looking each device up once per metric of its kind.
    query = sql.SQL(
        "WITH page AS (SELECT device_id, kind, township, village FROM devices d WHERE {}"
        "  ORDER BY device_id LIMIT %s),"
        " found AS (SELECT v.* FROM (SELECT p.device_id, p.kind, p.township, p.village,"
        "   l.metric, l.ts, l.value, l.received_at FROM page p JOIN LATERAL ("
        "    SELECT l.metric, l.ts, l.value, l.received_at FROM latest_values l"
        "    WHERE l.device_id = p.device_id {} OFFSET 0) l ON true OFFSET 0) v"
        "  JOIN metrics m ON m.kind = v.kind AND m.metric = v.metric)"
        " SELECT s.devices, s.last, f.* FROM (SELECT count(*), max(device_id) FROM page)"
        "  s (devices, last) LEFT JOIN found f ON true ORDER BY f.device_id, f.metric"
    ).format(condition, metric_filter)
    args: list[Any] = [*params, limit] + ([where.metric] if where.metric is not None else [])
    # Binary: times arrive as integers rather than text to parse (a page is 2,000 values).
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(query, args).fetchall()
    devices, last = rows[0][:2]
    return LatestValues(
        values=[LatestValue(*row[2:]) for row in rows if row[2] is not None],
        next_after=last if devices == limit else None,
    )


@dataclass(frozen=True)
class MetricColumn:
    """One metric's newest value and its device time, a cell per device (None: no value)."""

    value: list[float | None]
    ts: list[datetime | None]


@dataclass(frozen=True)
class LatestColumns:
    """A kind's devices in scope, one row each (ordered by id), with the newest value of each
    asked metric as columns; `next_after` is None on the last page."""

    kind: str
    device_id: list[str]
    township: list[str | None]
    village: list[str]
    metrics: dict[str, MetricColumn]
    next_after: str | None


def kind_metrics(kind: str, metrics: Sequence[str]) -> tuple[str, ...]:
    """The asked metrics (once each, in the order asked), all of the kind's when none is asked;
    an unknown kind or a metric the kind does not have is refused, naming which (`field`)."""
    try:
        found = kind_named(kind)
    except KeyError as exc:
        raise Invalid(str(exc.args[0]), "kind") from None
    for metric in metrics:
        if found.metric(metric) is None:
            names = ", ".join(spec.name for spec in found.metrics)
            raise Invalid(f"a {kind} has no metric {metric!r}; its metrics: {names}",
                          "metric")
    return tuple(dict.fromkeys(metrics)) or tuple(spec.name for spec in found.metrics)


def latest_columns(conn: psycopg.Connection, principal: Principal, where: LatestFilter,
                   metrics: Sequence[str], after: str | None, limit: int) -> LatestColumns:
    """The newest value of a few metrics of a page of one kind's devices in scope, as columns.

    One row per device, each metric's value found through `latest_values`' primary key, so
    a county (15,000 meters) is one query and one response.
    """
    if where.kind is None:
        raise Invalid("columns are of one kind: name it", "kind")
    asked = kind_metrics(where.kind, metrics)
    condition, params = _devices_in(principal, where, after)
    # One primary-key lookup per device finds all its asked metrics (the max() of a metric
    # is its one row): a lookup per cell cost three times as much for six metrics, and
    # joining the table instead let the planner hash a scan of all of it at ten counties
    # (1,050,000 rows: 480 ms for a township's 5,000 meters, against 80 ms by lookups,
    # load 13; docs/api.md).
    cells = sql.SQL(", ").join(sql.SQL("max(value) FILTER (WHERE metric = %s),"
                                       " max(ts) FILTER (WHERE metric = %s)") for _ in asked)
    query = sql.SQL(
        "WITH p AS (SELECT device_id, township, village FROM devices d WHERE {}"
        " ORDER BY device_id LIMIT %s)"
        " SELECT p.device_id, p.township, p.village, v.* FROM p CROSS JOIN LATERAL"
        " (SELECT {} FROM latest_values l WHERE l.device_id = p.device_id"
        "  AND l.metric = ANY(%s)) v ORDER BY p.device_id"
    ).format(condition, cells)
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(query, [*params, limit, *[m for m in asked for _ in ("value", "ts")],
                                   list(asked)]).fetchall()
    columns: list[Any] = list(zip(*rows, strict=True)) or [()] * (3 + 2 * len(asked))
    return LatestColumns(
        kind=where.kind,
        device_id=list(columns[0]), township=list(columns[1]), village=list(columns[2]),
        metrics={metric: MetricColumn(list(columns[3 + 2 * n]), list(columns[4 + 2 * n]))
                 for n, metric in enumerate(asked)},
        next_after=rows[-1][0] if len(rows) == limit else None,
    )


@dataclass(frozen=True)
class PlaceValue:
    """One place's aggregate in one bucket."""

    township: str | None
    village: str | None
    bucket: datetime
    value: float
    devices: int


_PLACE_AGG: dict[Agg, str] = {
    Agg.AVG: "avg(avg)", Agg.MIN: "min(min)", Agg.MAX: "max(max)", Agg.LAST: "avg(last)",
    Agg.DELTA: f"sum({_DELTA})",
}


def by_place(conn: psycopg.Connection, principal: Principal, level: PlaceLevel, kind: str,
             metric: str, start: datetime, end: datetime, bucket: Bucket, agg: Agg,
             limits: Limits, township: str | None = None) -> list[PlaceValue]:
    """Per township or village and bucket, a metric over a kind's devices (delta is summed)."""
    source = SOURCES[bucket]
    if source.rollup is None:
        raise RangeError("query.bucket", "per-place aggregates take bucket 1h or 1d")
    check_range(start, end, bucket, limits)
    condition, params = scope_conditions(principal, "d", {"township": township})
    village_column = sql.SQL("village" if level is PlaceLevel.VILLAGE else "NULL::text")
    query = sql.SQL(
        "WITH b AS ("
        " SELECT d.township, d.village, r.device_id, r.bucket, r.first, r.last, r.min, r.max,"
        "  r.avg, lag(r.last) OVER (PARTITION BY r.device_id ORDER BY r.bucket) AS prev"
        " FROM {rollup} r JOIN devices d ON d.device_id = r.device_id"
        " WHERE {scope} AND d.kind = %s AND r.metric = %s AND r.bucket >= %s AND r.bucket < %s)"
        " SELECT township, {village} AS village, bucket, {agg}, count(DISTINCT device_id)"
        " FROM b WHERE bucket >= %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT %s"
    ).format(rollup=sql.Identifier(source.rollup), scope=condition, village=village_column,
             agg=sql.SQL(_PLACE_AGG[agg]))
    # A county-wide month is ~450,000 buckets to window and group: sort them in memory, for
    # this transaction only (the pool's connections keep the server's default).
    conn.execute("SET LOCAL work_mem = '64MB'")
    rows = conn.execute(query, [*params, kind, metric, start - source.width, end, start,
                                limits.max_points]).fetchall()
    return [PlaceValue(*row) for row in rows]
