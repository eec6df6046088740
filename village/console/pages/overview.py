"""The county at a glance for the signed-in scope, and the one map of every device."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from psycopg import sql

from broadcast import service as broadcasts
from ground.principal import Principal
from village.api.deps import Conn
from village.console import web
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


def _counts(conn: psycopg.Connection, principal: Principal, column: str) -> list[Count]:
    condition, params = within(principal, "s")
    query = sql.SQL(
        "SELECT coalesce({col}, '-'), count(*) FILTER (WHERE s.online),"
        " count(*) FILTER (WHERE NOT s.online) FROM device_status s"
        " WHERE s.lifecycle = 'active' AND {cond} GROUP BY 1 ORDER BY 1"
    ).format(col=sql.Identifier("s", column), cond=condition)
    return [Count(*row) for row in conn.execute(query, params).fetchall()]


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
    return Summary(_counts(conn, principal, "kind"), _counts(conn, principal, level), level,
                   _firing(conn, principal), in_progress,
                   _dead_letters(conn, principal, now - timedelta(hours=1)))


def map_data(conn: psycopg.Connection, principal: Principal) -> dict[str, Any]:
    """Every positioned device in scope (columns, to keep it small) and each village's extent."""
    condition, params = within(principal, "s")
    # Positions to 1e-5 degree (a metre), in float arithmetic: numeric rounding, and an
    # order the map does not need, cost more than the rest of the query together.
    rows = conn.execute(sql.SQL(
        "SELECT s.device_id, round(d.latitude * 1e5) / 1e5, round(d.longitude * 1e5) / 1e5,"
        " s.online, s.kind FROM device_status s JOIN devices d ON d.device_id = s.device_id"
        " WHERE s.lifecycle = 'active' AND d.latitude IS NOT NULL AND {}").format(condition),
        params).fetchall()
    places_in, place_params = within(principal, "d")
    places = conn.execute(sql.SQL(
        "SELECT d.township, d.village, min(d.latitude), min(d.longitude), max(d.latitude),"
        " max(d.longitude) FROM devices d WHERE d.lifecycle = 'active'"
        " AND d.latitude IS NOT NULL AND {} GROUP BY 1, 2 ORDER BY 1, 2").format(places_in),
        place_params).fetchall()
    kinds = sorted({row[4] for row in rows})
    index = {kind: i for i, kind in enumerate(kinds)}
    return {
        "kinds": kinds,
        "ids": [row[0] for row in rows],
        "lat": [row[1] for row in rows],
        "lon": [row[2] for row in rows],
        "online": [1 if row[3] else 0 for row in rows],
        "kind": [index[row[4]] for row in rows],
        "places": [{"township": p[0], "village": p[1], "bounds": [[p[2], p[3]], [p[4], p[5]]]}
                   for p in places],
    }


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
def device_map(conn: Conn, session: web.SignedIn) -> Response:
    """The map's devices and places in the user's scope."""
    # orjson directly: FastAPI's generic encoder takes a second over a county's devices.
    return Response(orjson.dumps(map_data(conn, session.user.principal)),
                    media_type="application/json")
