"""Telemetry: latest values, a device's series, per-place aggregates."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from devices import telemetry
from devices.service import shown_device
from devices.telemetry import Agg, Bucket, PlaceLevel, RangeError
from ground.errors import Invalid
from village.api.deps import Caller, Conn, Limit, api_settings
from village.api.problems import Problem
from village.api.settings import ApiSettings

router = APIRouter(tags=["telemetry"])
T = TypeVar("T")

From = Annotated[datetime, Query(alias="from", description="start, inclusive, with a time zone")]
To = Annotated[datetime, Query(alias="to", description="end, exclusive, with a time zone")]


def limits(settings: Annotated[ApiSettings, Depends(api_settings)]) -> telemetry.Limits:
    """The configured bounds on ranges and points."""
    return telemetry.Limits(
        max_range=timedelta(days=settings.max_range_days),
        max_raw_range=timedelta(days=settings.max_raw_range_days),
        max_points=settings.max_points,
    )


Bounds = Annotated[telemetry.Limits, Depends(limits)]


class Point(BaseModel):
    """One value of a series."""

    t: datetime
    v: float | None


class Series(BaseModel):
    """A device's metric over a time range."""

    device_id: str
    metric: str
    bucket: Bucket
    agg: Agg
    points: list[Point]


class LatestPage(BaseModel):
    """Latest values of a page of devices; pass `next_after` as `after` for the next page."""

    items: list[telemetry.LatestValue]
    next_after: str | None


def _checked(call: Callable[[], T]) -> T:
    """Run a telemetry query, turning an out-of-bounds range into a problem naming its field."""
    try:
        return call()
    except RangeError as exc:
        raise Problem(422, str(exc), exc.field) from None


@router.get("/telemetry/latest", summary="Latest values of many devices",
            response_model=LatestPage)
def latest(
    conn: Conn, caller: Caller, limit: Limit,
    kind: str | None = None, township: str | None = None, village: str | None = None,
    metric: str | None = None,
    after: Annotated[str | None, Query(description="the last device id of the previous page")] = None,
) -> Response:
    """Each device's newest value of each metric, for a page of devices in scope."""
    where = telemetry.LatestFilter(kind, township, village, None, metric)
    found = telemetry.latest(conn, caller, where, after, limit)
    # A page is 2,000 values: encoded straight from the dataclasses, as the model would
    # (times in RFC 3339, UTC as Z), without validating them into models first.
    body = {"items": found.values, "next_after": found.next_after}
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


# A county is 15,000 meters; ten counties' meters take eight requests.
MAX_COLUMN_DEVICES = 20_000
# Quick to pack: a county's register column shrinks about tenfold in a few milliseconds.
GZIP_LEVEL = 1


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip: named, or `*`, with a weight above 0."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        weight = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            weights[coding.lower()] = float(weight)
        except ValueError:
            weights[coding.lower()] = 0.0
    return weights.get("gzip", weights.get("*", 0.0)) > 0


@router.get("/telemetry/latest/columns", summary="Latest values of a kind's devices, as columns",
            response_model=telemetry.LatestColumns)
def latest_columns(
    request: Request, conn: Conn, caller: Caller,
    kind: Annotated[str, Query(description="the devices' kind (e.g. water_meter)")],
    metric: Annotated[list[str] | None, Query(
        description="a metric of the kind; repeat for more (none: every metric of the kind)")] = None,
    township: str | None = None, village: str | None = None,
    after: Annotated[str | None, Query(description="the last device id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_COLUMN_DEVICES,
                                description="devices per response")] = MAX_COLUMN_DEVICES,
) -> Response:
    """Each device's newest value and its time of a few metrics, a whole county in one answer.

    Rows are the kind's devices in scope (a device without a value has nulls); the same
    scope and filters as `GET /telemetry/latest`. Sent gzip-packed when the client accepts it.
    """
    where = telemetry.LatestFilter(kind, township, village)
    try:
        found = telemetry.latest_columns(conn, caller, where, metric or (), after, limit)
    except Invalid as exc:
        raise Problem(422, str(exc), f"query.{exc.field}") from None
    body = orjson.dumps(found, option=orjson.OPT_UTC_Z)
    headers = {"Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(gzip.compress(body, GZIP_LEVEL), media_type="application/json",
                        headers=headers | {"Content-Encoding": "gzip"})
    return Response(body, media_type="application/json", headers=headers)


@router.get("/devices/{device_id}/latest", summary="A device's latest values")
def device_latest(device_id: str, conn: Conn, caller: Caller) -> list[telemetry.LatestValue]:
    """The device's newest value of each of its metrics."""
    shown_device(conn, caller, device_id)
    found = telemetry.latest(conn, caller, telemetry.LatestFilter(device_id=device_id), None, 1)
    return found.values


@router.get("/devices/{device_id}/series", summary="A device's series")
def device_series(
    device_id: str, conn: Conn, caller: Caller, bounds: Bounds,
    metric: str, start: From, end: To,
    bucket: Bucket = Bucket.RAW, agg: Agg = Agg.AVG,
) -> Series:
    """One metric of a device over [from, to), raw or in buckets of 1 minute to 1 day."""
    shown_device(conn, caller, device_id)
    points = _checked(lambda: telemetry.series(conn, device_id, metric, start, end, bucket, agg,
                                               bounds))
    return Series(device_id=device_id, metric=metric, bucket=bucket, agg=agg,
                  points=[Point(t=t, v=v) for t, v in points])


@router.get("/telemetry/places", summary="Per-place aggregates")
def places(
    conn: Conn, caller: Caller, bounds: Bounds,
    kind: str, metric: str, start: From, end: To,
    level: PlaceLevel = PlaceLevel.VILLAGE, bucket: Bucket = Bucket.DAY_1, agg: Agg = Agg.DELTA,
    township: str | None = None,
) -> list[telemetry.PlaceValue]:
    """A metric per village (or township) and bucket over a kind's devices in scope.

    With `agg=delta` on a register this is consumption: e.g. kind=water_meter,
    metric=total_m3, bucket=1d gives each village's water use per day.
    """
    return _checked(lambda: telemetry.by_place(conn, caller, level, kind, metric, start, end,
                                               bucket, agg, bounds, township))
