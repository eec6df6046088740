"""Device pages over HTTP: search within scope, a device's page with its chart, actions by
role, and a CSV import that writes nothing while any row is bad."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import device_id
from tests.console.conftest import UserMaker, form_token, sign_in

GOOD_AND_BAD = """device_id,kind,township,village,latitude
wm-new-0001,water_meter,east,east-1,30.1
wm-new-0002,toaster,east,east-1,
wm-new-0003,water_meter,east,east-1,95
"""


def test_search_finds_by_id_or_name_within_the_scope(console: TestClient,
                                                     make_user: UserMaker) -> None:
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    found = console.get("/console/devices", params={"q": "watermeter"}).text
    assert device_id("water_meter", "east-1") in found
    assert device_id("water_meter", "west-1") not in found
    by_name = console.get("/console/devices", params={"q": "east-2 water_q"}).text
    assert device_id("water_quality", "east-2") in by_name
    assert device_id("water_meter", "east-2") not in by_name
    offline = console.get("/console/devices", params={"status": "online"}).text
    assert device_id("water_meter", "east-1") not in offline  # nothing has been heard


def test_a_device_page_charts_the_chosen_metric_and_range(console: TestClient,
                                                          make_user: UserMaker) -> None:
    make_user("viewer", Role.VIEWER, "east", "east-1")
    sign_in(console, "viewer")
    meter = device_id("water_meter", "east-1")
    page = console.get(f"/console/devices/{meter}", params={"metric": "total_m3", "span": "7d"})
    assert page.status_code == 200 and 'id="device-chart"' in page.text
    assert "&#34;bucket&#34;:&#34;15m&#34;" in page.text  # 7 days at 15 minutes
    assert "rotate-secret" not in page.text  # a viewer has no actions
    other = console.get(f"/console/devices/{device_id('water_meter', 'west-1')}")
    assert other.status_code == 403


def test_an_operator_rotates_a_secret_and_retires_a_device(console: TestClient,
                                                           make_user: UserMaker,
                                                           database_url: str) -> None:
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    meter = device_id("water_meter", "east-1")
    token = form_token(console.get(f"/console/devices/{meter}").text)
    rotated = console.post(f"/console/devices/{meter}/rotate-secret", data={"csrf_token": token})
    assert rotated.status_code == 200 and 'id="secret"' in rotated.text
    assert console.post(f"/console/devices/{meter}/retire",
                        data={"csrf_token": token}).status_code == 303
    with psycopg.connect(database_url) as conn:
        lifecycle = conn.execute("SELECT lifecycle FROM devices WHERE device_id = %s",
                                 (meter,)).fetchone()
        actions = conn.execute("SELECT action FROM api_audit WHERE actor = 'user:op'"
                               " ORDER BY id").fetchall()
    assert lifecycle == ("retired",)
    assert actions == [("device.rotate_secret",), ("device.retire",)]


def test_a_csv_with_bad_rows_shows_each_and_imports_nothing(console: TestClient,
                                                            make_user: UserMaker,
                                                            database_url: str) -> None:
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    token = form_token(console.get("/console/devices/import").text)
    refused = console.post("/console/devices/import", data={"csrf_token": token},
                           files={"file": ("devices.csv", GOOD_AND_BAD.encode(), "text/csv")})
    assert refused.status_code == 422
    assert refused.text.count("<tr><td>") == 2 and "toaster" in refused.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM devices WHERE device_id LIKE 'wm-new%'"
                            ).fetchone() == (0,)
    good = "\n".join(GOOD_AND_BAD.splitlines()[:2]) + "\n"
    imported = console.post("/console/devices/import", data={"csrf_token": token},
                            files={"file": ("devices.csv", good.encode(), "text/csv")})
    assert imported.status_code == 200 and 'id="imported"' in imported.text
    assert "wm-new-0001" in imported.text  # its secret, shown once
