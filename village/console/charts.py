"""A metric's readings over a range as a chart's data, at a resolution that keeps the chart
small (pure choice of resolution; the reading goes through the telemetry API's series)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from devices.telemetry import Agg, Bucket, Limits, series
from village.api.settings import ApiSettings

# The finest resolution for each longest span: about 300 to 800 points whatever the range.
_RESOLUTIONS = (
    (timedelta(hours=6), Bucket.MIN_1),
    (timedelta(days=2), Bucket.MIN_5),
    (timedelta(days=7), Bucket.MIN_15),
    (timedelta(days=45), Bucket.HOUR_1),
)
RANGES = {"6h": timedelta(hours=6), "1d": timedelta(days=1), "7d": timedelta(days=7),
          "30d": timedelta(days=30), "365d": timedelta(days=365)}


def resolution(span: timedelta) -> Bucket:
    """The bucket a chart of `span` is drawn at."""
    for longest, bucket in _RESOLUTIONS:
        if span <= longest:
            return bucket
    return Bucket.DAY_1


def chart_data(conn: psycopg.Connection, device_id: str, metric: str, start: datetime,
               end: datetime, api: ApiSettings) -> dict[str, Any]:
    """`{"t": [unix seconds], "v": [values], "bucket": ..., "from", "to"}` for uPlot: the
    chart spans the range asked for, not only the points found (one point alone would
    otherwise stretch the axis over years)."""
    bucket = resolution(end - start)
    limits = Limits(timedelta(days=api.max_range_days), timedelta(days=api.max_raw_range_days),
                    api.max_points)
    points = series(conn, device_id, metric, start, end, bucket, Agg.AVG, limits)
    return {"metric": metric, "bucket": str(bucket),
            "from": int(start.timestamp()), "to": int(end.timestamp()),
            "t": [int(ts.timestamp()) for ts, _ in points],
            "v": [None if value is None else round(value, 4) for _, value in points]}
