"""The county at a glance for the signed-in scope, and the one map of every device."""

from __future__ import annotations

import gzip
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from psycopg import sql

from broadcast import service as broadcasts
from ground.principal import Principal
from village.api.deps import Conn
from village.console import web
from village.console.scope_cache import ScopeCache
from village.console.scoped import place_level, within

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
SEVERITIES = ("critical", "major", "minor", "info")
IN_PROGRESS = ("new", "active")


@dataclass(frozen=True)
class Count:
    """Online and offline devices of one kind or place."""

    key: str
    online: int
    offline: int


@dataclass(frozen=True)
class Summary:
    """What the overview shows."""

    by_kind: list[Count]
    by_place: list[Count]
    place_level: str
    firing: dict[str, int]
    in_progress: list[broadcasts.Report]
    dead_letters_hour: int


def _counts(conn: psycopg.Connection, principal: Principal,
            place: str) -> tuple[list[Count], list[Count]]:
    """Online and offline devices by kind and by place, in one pass over the fleet."""
    condition, params = within(principal, "s")
    query = sql.SQL(
        "SELECT GROUPING(s.kind), coalesce(CASE WHEN GROUPING(s.kind) = 0 THEN s.kind"
        " ELSE {place} END, '-'), count(*) FILTER (WHERE s.online),"
        " count(*) FILTER (WHERE NOT s.online) FROM device_status s"
        " WHERE s.lifecycle = 'active' AND {cond} GROUP BY GROUPING SETS ((s.kind), ({place}))"
        " ORDER BY 1, 2"
    ).format(place=sql.Identifier("s", place), cond=condition)
    by_kind: list[Count] = []
    by_place: list[Count] = []
    for by_place_row, key, online, offline in conn.execute(query, params).fetchall():
        (by_place if by_place_row else by_kind).append(Count(key, online, offline))
    return by_kind, by_place


def _firing(conn: psycopg.Connection, principal: Principal) -> dict[str, int]:
    condition, params = within(principal, "a")
    rows = conn.execute(sql.SQL(
        "SELECT a.severity, count(*) FROM alerts a WHERE a.state = 'firing' AND {}"
        " GROUP BY 1").format(condition), params).fetchall()
    found: dict[str, int] = dict(rows)
    return {severity: found.get(severity, 0) for severity in SEVERITIES}


def _dead_letters(conn: psycopg.Connection, principal: Principal, since: datetime) -> int:
    if principal.scope.township is None:
        row = conn.execute("SELECT count(*) FROM dead_letters WHERE received_at > %s",
                           (since,)).fetchone()
    else:
        condition, params = within(principal, "d")
        row = conn.execute(sql.SQL(
            "SELECT count(*) FROM dead_letters l JOIN devices d ON d.device_id = l.device_id"
            " WHERE l.received_at > %s AND {}").format(condition), [since, *params]).fetchone()
    return int(row[0]) if row else 0


def summary(conn: psycopg.Connection, principal: Principal, now: datetime,
            counted: tuple[list[Count], list[Count]]) -> Summary:
    """Devices by kind and place (as counted), firing alerts, broadcasts in progress, dead
    letters."""
    in_progress = [r for r in broadcasts.list_broadcasts(conn, principal, now, 20)
                   if r.status in IN_PROGRESS]
    by_kind, by_place = counted
    return Summary(by_kind, by_place, place_level(principal), _firing(conn, principal),
                   in_progress,
                   _dead_letters(conn, principal, now - timedelta(hours=1)))


# Every positioned device in scope as columns (kinds by index into every kind), and each
# village's extent, built by PostgreSQL as one JSON text: no row reaches Python. Positions
# to 1e-5 degree (a metre), in float arithmetic.
_MAP = """
WITH shown AS (
    SELECT s.device_id, round(d.latitude * 1e5) / 1e5 AS lat,
           round(d.longitude * 1e5) / 1e5 AS lon, s.online, s.kind, s.township, s.village
    FROM device_status s JOIN devices d ON d.device_id = s.device_id
    WHERE s.lifecycle = 'active' AND d.latitude IS NOT NULL AND {cond}
), kinds AS (
    SELECT array_agg(kind ORDER BY kind) AS names FROM device_kinds
), places AS (
    SELECT township, village, min(lat) AS south, min(lon) AS west, max(lat) AS north,
           max(lon) AS east
    FROM shown GROUP BY 1, 2
)
SELECT json_build_object(
    'kinds', (SELECT names FROM kinds),
    'ids', coalesce(array_agg(device_id), '{{}}'),
    'lat', coalesce(array_agg(lat), '{{}}'),
    'lon', coalesce(array_agg(lon), '{{}}'),
    'online', coalesce(array_agg(online::int), '{{}}'),
    'kind', coalesce(array_agg(array_position((SELECT names FROM kinds), kind) - 1), '{{}}'),
    'places', (SELECT coalesce(json_agg(json_build_object(
                   'township', township, 'village', village,
                   'bounds', json_build_array(json_build_array(south, west),
                                              json_build_array(north, east)))
                   ORDER BY township, village), '[]') FROM places)
)::text FROM shown
"""
GZIP_LEVEL = 4  # as the console's other responses (village/console/mount.py)


@dataclass(frozen=True)
class MapData:
    """A scope's map document, plain and gzip-packed once, and its entity tag."""

    body: bytes
    packed: bytes
    etag: str


def map_data(conn: psycopg.Connection, principal: Principal) -> bytes:
    """The map document (JSON) of every positioned device in scope and each village's extent."""
    condition, params = within(principal, "s")
    row = conn.execute(sql.SQL(_MAP).format(cond=condition), params).fetchone()
    assert row is not None, "an aggregate always answers"
    return str(row[0]).encode()


def read_map(conn: psycopg.Connection, principal: Principal) -> MapData:
    """The scope's map as the database has it now, packed and tagged."""
    body = map_data(conn, principal)
    return MapData(body, gzip.compress(body, GZIP_LEVEL),
                   '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')


@dataclass(frozen=True)
class Caches:
    """The overview's figures over the whole fleet, per scope (village/console/scope_cache.py)."""

    counts: ScopeCache[tuple[list[Count], list[Count]]]
    maps: ScopeCache[MapData]


def _caches(request: Request) -> Caches:
    state = request.app.state
    if not hasattr(state, "console_overview"):
        state.console_overview = Caches(
            ScopeCache("device counts", state.pool,
                       lambda conn, principal: _counts(conn, principal, place_level(principal))),
            ScopeCache("map", state.pool, read_map))
    caches: Caches = state.console_overview
    return caches


def _summary(request: Request, conn: Conn, principal: Principal) -> Summary:
    counted = _caches(request).counts.get(conn, principal, time.monotonic())
    return summary(conn, principal, web.now(), counted)


@router.get("/")
def overview(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The overview page."""
    return web.render(request, "overview.html", session, page="overview",
                      summary=_summary(request, conn, session.user.principal))


@router.get("/overview/summary")
def overview_summary(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The overview's figures alone, for the page's periodic refresh."""
    return web.render(request, "overview_summary.html", session,
                      summary=_summary(request, conn, session.user.principal))


@router.get("/map.json")
def device_map(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The map's devices and places in the user's scope; 304 when the browser has them."""
    found = _caches(request).maps.get(conn, session.user.principal, time.monotonic())
    headers = {"ETag": found.etag, "Cache-Control": "private, no-cache",
               "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(found.packed, media_type="application/json",
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.body, media_type="application/json", headers=headers)
