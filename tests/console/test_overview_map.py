"""The overview's figures and map data over HTTP: what the scope holds, online as the status
view says, villages' extents, and the map served again from its tag."""

from __future__ import annotations

import orjson
import psycopg
from fastapi.testclient import TestClient

from ground.principal import SYSTEM, Role
from tests.api.conftest import device_id
from tests.console.conftest import UserMaker, place_devices, sign_in
from tests.ingest.conftest import wait_until
from village.console.pages.overview import read_map
from village.console.scope_cache import FRESH_S, ScopeCache


def test_a_township_operator_sees_its_devices_coloured_by_status(
        console: TestClient, make_user: UserMaker, database_url: str) -> None:
    place_devices(database_url)
    heard = device_id("water_meter", "east-2")
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO device_presence (device_id, last_seen) VALUES (%s, now())",
                     (heard,))
        conn.execute("UPDATE devices SET latitude = NULL WHERE device_id = %s",
                     (device_id("speaker", "east-1"),))
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    data = console.get("/console/map.json").json()
    east = sorted(device_id(kind, village) for kind in ("water_meter", "water_quality", "speaker")
                  for village in ("east-1", "east-2"))
    east.remove(device_id("speaker", "east-1"))  # no position: not on the map
    assert sorted(data["ids"]) == east
    assert data["kinds"] == ["barn", "camera", "gateway", "speaker", "water_meter",
                             "water_quality"]  # every kind, the markers' by index
    shown = {i: (data["kinds"][k], on, lat) for i, k, on, lat in zip(
        data["ids"], data["kind"], data["online"], data["lat"], strict=True)}
    assert shown[heard] == ("water_meter", 1, 30.139)  # 30 + 0.02 + 0.001 * ascii('w')
    assert shown[device_id("water_meter", "east-1")][1] == 0  # never heard
    assert [(p["village"], p["bounds"]) for p in data["places"]] == [
        ("east-1", [[30.119, 120.011], [30.119, 120.013]]),  # its speaker has no position
        ("east-2", [[30.135, 120.007], [30.139, 120.013]])]
    page = console.get("/console/").text
    assert 'id="summary"' in page and "east-2" in page and "west-1" not in page


def test_the_map_is_served_from_its_tag_and_read_anew_behind_the_answer(
        console: TestClient, make_user: UserMaker, database_url: str) -> None:
    place_devices(database_url)
    make_user("admin")
    sign_in(console, "admin")
    first = console.get("/console/map.json", headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip" and len(first.json()["ids"]) == 12
    tag = first.headers["etag"]
    assert console.get("/console/map.json", headers={"if-none-match": tag}).status_code == 304
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE devices SET latitude = NULL WHERE village = 'west-1'")
    # Read moments ago: the same document.
    assert console.get("/console/map.json").content == first.content


def test_a_stale_map_is_served_once_more_while_it_is_read_anew(
        console: TestClient, database_url: str) -> None:
    place_devices(database_url)
    cache = ScopeCache("map", console.app.state.pool, read_map)  # type: ignore[attr-defined]
    with psycopg.connect(database_url, autocommit=True) as conn:
        first = cache.get(conn, SYSTEM, 100.0)
        assert len(orjson.loads(first.body)["ids"]) == 12
        conn.execute("UPDATE devices SET latitude = NULL WHERE village = 'west-1'")
        assert cache.get(conn, SYSTEM, 100.0 + FRESH_S - 1) is first
        assert cache.get(conn, SYSTEM, 100.0 + FRESH_S) is first  # stale: read behind
        wait_until(lambda: cache.get(conn, SYSTEM, 100.0 + FRESH_S) is not first,
                   what="the new map")
        newer = cache.get(conn, SYSTEM, 100.0 + FRESH_S)
    assert len(orjson.loads(newer.body)["ids"]) == 9 and newer.etag != first.etag
