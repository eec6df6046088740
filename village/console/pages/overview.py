"""The county at a glance for the signed-in scope, and the one map of every device."""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from psycopg import sql
from psycopg_pool import ConnectionPool

from broadcast import service as broadcasts
from ground.principal import Principal
from village.api.deps import Conn
from village.console import web
from village.console.scoped import place_level, within

log = logging.getLogger("village.console")
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


def summary(conn: psycopg.Connection, principal: Principal, now: datetime) -> Summary:
    """Devices by kind and place, firing alerts, broadcasts in progress, dead letters."""
    level = place_level(principal)
    in_progress = [r for r in broadcasts.list_broadcasts(conn, principal, now, 20)
                   if r.status in IN_PROGRESS]
    by_kind, by_place = _counts(conn, principal, level)
    return Summary(by_kind, by_place, level, _firing(conn, principal), in_progress,
                   _dead_letters(conn, principal, now - timedelta(hours=1)))


# Every positioned device in scope as columns (kinds by index into every kind), and each
# village's extent,
# built by PostgreSQL as one JSON text: no row reaches Python. Positions to 1e-5 degree (a
# metre), in float arithmetic.
_MAP = """
WITH shown AS (
    SELECT s.device_id, round(s.latitude * 1e5) / 1e5 AS lat,
           round(s.longitude * 1e5) / 1e5 AS lon, s.online, s.kind, s.township, s.village
    FROM device_status s WHERE s.lifecycle = 'active' AND s.latitude IS NOT NULL AND {cond}
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
MAP_FRESH_S = 10.0  # how long one scope's map is served before it is read anew
GZIP_LEVEL = 4  # as the console's other responses (village/console/mount.py)


@dataclass(frozen=True)
class MapData:
    """A scope's map document (plain and gzip-packed once), its entity tag, when it was read."""

    body: bytes
    packed: bytes
    etag: str
    read_at: float


def map_data(conn: psycopg.Connection, principal: Principal) -> bytes:
    """The map document (JSON) of every positioned device in scope and each village's extent."""
    condition, params = within(principal, "s")
    row = conn.execute(sql.SQL(_MAP).format(cond=condition), params).fetchone()
    assert row is not None, "an aggregate always answers"
    return str(row[0]).encode()


def read_map(conn: psycopg.Connection, principal: Principal, clock: float) -> MapData:
    """The scope's map as the database has it now, packed and tagged."""
    body = map_data(conn, principal)
    return MapData(body, gzip.compress(body, GZIP_LEVEL),
                   '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"', clock)


class MapCache:
    """Each scope's map, read at most every MAP_FRESH_S and shared by everyone in the scope.
    A stale map is served while a thread reads it anew, so only a scope's first request
    waits for the database (a county's map is 18,000 rows; markers follow statuses that are
    judged over minutes)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._maps: dict[tuple[str | None, str | None], MapData] = {}
        self._reading: set[tuple[str | None, str | None]] = set()
        self._lock = threading.Lock()

    def get(self, conn: psycopg.Connection, principal: Principal, clock: float) -> MapData:
        """The scope's map: read now if there is none, else the one held (refreshed behind
        the answer when it is older than MAP_FRESH_S)."""
        key = (principal.scope.township, principal.scope.village)
        with self._lock:
            found = self._maps.get(key)
            refresh = (found is not None and clock - found.read_at >= MAP_FRESH_S
                       and key not in self._reading)
            if refresh:
                self._reading.add(key)
        if found is None:
            found = self._maps[key] = read_map(conn, principal, clock)
        elif refresh:
            threading.Thread(target=self._refresh, args=(key, principal, clock),
                             name="console-map", daemon=True).start()
        return found

    def _refresh(self, key: tuple[str | None, str | None], principal: Principal,
                 clock: float) -> None:
        try:
            with self._pool.connection() as conn:
                self._maps[key] = read_map(conn, principal, clock)
        except psycopg.Error as exc:  # the held map is served until a later read succeeds
            log.warning("console map not refreshed: %s", str(exc).strip().splitlines()[0])
        finally:
            with self._lock:
                self._reading.discard(key)


@router.get("/")
def overview(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The overview page."""
    principal = session.user.principal
    return web.render(request, "overview.html", session, page="overview",
                      summary=summary(conn, principal, web.now()))


@router.get("/overview/summary")
def overview_summary(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The overview's figures alone, for the page's periodic refresh."""
    principal = session.user.principal
    return web.render(request, "overview_summary.html", session,
                      summary=summary(conn, principal, web.now()))


@router.get("/map.json")
def device_map(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The map's devices and places in the user's scope; 304 when the browser has them."""
    state = request.app.state
    if not hasattr(state, "console_maps"):
        state.console_maps = MapCache(state.pool)
    found = state.console_maps.get(conn, session.user.principal, time.monotonic())
    headers = {"ETag": found.etag, "Cache-Control": "private, no-cache",
               "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(found.packed, media_type="application/json",
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.body, media_type="application/json", headers=headers)
