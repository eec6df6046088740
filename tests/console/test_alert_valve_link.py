"""A meter's leak or burst alert links to the device page's commands, where the valve is
closed, for a user whose role may send `set_valve` there; other alerts and roles get no link."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import NOW, device_id, insert_alert
from tests.console.conftest import UserMaker, sign_in

METER = device_id("water_meter", "east-1")
LINK = f'href="/console/devices/{METER}#commands" id="close-valve"'
CONDITIONS = {"wm-leak-flag": "event", "wm-burst-use": "consumption", "wm-tamper": "event"}


def _alert(database_url: str, rule: str, village: str = "east-1", state: str = "firing") -> int:
    """An alert of a preset rule on the village's meter."""
    alert_id = insert_alert(database_url, village, state=state)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE alerts SET rule = %s, condition = %s WHERE id = %s",
                     (rule, CONDITIONS[rule], alert_id))
    return alert_id


def _valve_reported(database_url: str, meter: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                     " VALUES (%s, 'valve_open', %s, 1)", (meter, NOW))
        # Written without ingest: merged into latest_values as an import would be.
        conn.execute("SELECT village_merge_latest()")


def test_an_operator_goes_from_a_leak_alert_to_the_meters_valve(
        console: TestClient, make_user: UserMaker, seeded: str) -> None:
    _valve_reported(seeded, METER)
    leak = _alert(seeded, "wm-leak-flag")  # events leak/burst
    burst = _alert(seeded, "wm-burst-use")  # an hour's use above 2 m³
    tamper = _alert(seeded, "wm-tamper")  # an event, but not a leak: the valve stays
    over = _alert(seeded, "wm-leak-flag", state="resolved")
    no_valve = _alert(seeded, "wm-leak-flag", village="east-2")  # never reported a valve
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    page = console.get(f"/console/alerts/{leak}").text
    assert LINK in page and "关闭该水表阀门" in page
    assert LINK in console.get(f"/console/alerts/{burst}").text
    for alert_id in (tamper, over, no_valve):
        shown = console.get(f"/console/alerts/{alert_id}")
        assert shown.status_code == 200 and 'id="close-valve"' not in shown.text, alert_id
    device_page = console.get(f"/console/devices/{METER}").text
    assert 'id="commands"' in device_page and 'id="command-set_valve"' in device_page
    console.get("/console/lang/en")
    assert "Close the valve</a>" in console.get(f"/console/alerts/{leak}").text


def test_a_cadre_sees_the_leak_alert_without_the_valve_link(
        console: TestClient, make_user: UserMaker, seeded: str) -> None:
    _valve_reported(seeded, METER)
    leak = _alert(seeded, "wm-leak-flag")
    make_user("cadre", Role.CADRE, "east", "east-1")
    sign_in(console, "cadre")
    page = console.get(f"/console/alerts/{leak}")
    assert page.status_code == 200 and 'id="ack-form"' in page.text  # the cadre may ack
    assert 'id="close-valve"' not in page.text
