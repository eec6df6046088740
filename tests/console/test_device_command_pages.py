"""Device commands from the console over HTTP: a device page's forms by role and scope, a
command sent and audited with its reason, bad input named with nothing sent, and a
selection from the device list confirmed with its count and followed page by page."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import NOW, device_id
from tests.console.conftest import UserMaker, form_token, sign_in

METER = device_id("water_meter", "east-1")


def _valve_reported(database_url: str, *meters: str, is_open: bool = True) -> None:
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy("COPY readings (device_id, metric, ts, value) FROM STDIN") as copy:
            for meter in meters:
                copy.write_row((meter, "valve_open", NOW, 1 if is_open else 0))
        conn.execute("SELECT village_merge_latest()")  # as an import would


def _commands(database_url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT created_by, op, args::text, why FROM device_commands"
                            " ORDER BY created_at").fetchall()


def _close(token: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": token, "op": "set_valve", "arg_open": "false", "why": "爆管抢修",
            "expires_minutes": "30", **extra}


def test_an_operator_closes_a_valve_from_the_device_page_and_follows_the_answer(
        console: TestClient, make_user: UserMaker, seeded: str) -> None:
    _valve_reported(seeded, METER)
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    page = console.get(f"/console/devices/{METER}").text
    assert 'id="command-set_valve"' in page and 'data-open="true"' in page
    assert "关闭阀门" in page  # the argument's choices, in words
    forged = console.post(f"/console/devices/{METER}/commands", data=_close("forged"))
    assert forged.status_code == 403 and "CSRF" in forged.text and _commands(seeded) == []
    sent = console.post(f"/console/devices/{METER}/commands", data=_close(form_token(page)))
    assert sent.status_code == 303 and sent.headers["location"].endswith(f"{METER}#commands")
    assert _commands(seeded) == [("user:op", "set_valve", '{"open": false}', "爆管抢修")]
    with psycopg.connect(seeded) as conn:
        audited = conn.execute("SELECT actor, target, township, village, detail->>'why'"
                               " FROM api_audit WHERE action = 'device.command'").fetchall()
        (command_id,), = conn.execute("SELECT command_id FROM device_commands").fetchall()
    assert audited == [("user:op", f"command:{command_id}", "east", "east-1", "爆管抢修")]
    fragment = console.get(f"/console/devices/{METER}/commands").text
    row = re.search(rf'<tr id="command-{command_id}" data-state="(\w+)">(.*?)</tr>', fragment)
    assert row and row.group(1) == "queued" and "爆管抢修" in row.group(2)
    assert "hx-trigger" in fragment  # still open: the page keeps asking
    with psycopg.connect(seeded) as conn:  # the meter answers, as the daemon records it
        conn.execute("UPDATE device_command_deliveries SET state = 'rejected',"
                     " reason = 'valve seized: it did not move', finished_at = now()")
    fragment = console.get(f"/console/devices/{METER}/commands").text
    assert 'data-state="rejected"' in fragment and "valve seized: it did not move" in fragment
    assert "hx-trigger" not in fragment  # answered: nothing more to wait for
    shown = console.get(f"/console/commands/{command_id}").text
    assert 'id="count-rejected" data-count="1"' in shown and "valve seized" in shown
    assert "阀门控制: 关闭阀门" in shown
    console.get("/console/lang/en")
    english = console.get(f"/console/commands/{command_id}").text
    assert "Valve: Close the valve" in english and "Rejected" in english


def test_who_gets_a_command_form_and_who_is_refused(console: TestClient, make_user: UserMaker,
                                                    seeded: str) -> None:
    _valve_reported(seeded, METER, device_id("water_meter", "west-1"))
    make_user("cadre", Role.CADRE, "east", "east-1")
    make_user("viewer", Role.VIEWER)
    make_user("west_op", Role.OPERATOR, "west")
    for name in ("cadre", "viewer"):
        sign_in(console, name)
        page = console.get(f"/console/devices/{METER}")
        assert page.status_code == 200 and "command-set_valve" not in page.text
        assert 'id="recent-commands"' in page.text and 'id="valve"' in page.text
    sign_in(console, "cadre")
    token = form_token(console.get(f"/console/devices/{METER}").text)
    refused = console.post(f"/console/devices/{METER}/commands", data=_close(token))
    assert refused.status_code == 403
    assert "cadre (cadre) may not send set_valve to " + METER in refused.text
    sign_in(console, "west_op")
    token = form_token(console.get("/console/devices").text)
    elsewhere = console.post(f"/console/devices/{METER}/commands", data=_close(token))
    assert elsewhere.status_code == 403 and METER in elsewhere.text
    assert _commands(seeded) == []


def test_bad_input_is_named_and_nothing_is_sent(console: TestClient, make_user: UserMaker,
                                                seeded: str) -> None:
    retired = device_id("water_meter", "east-2")
    _valve_reported(seeded, METER, retired)
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    token = form_token(console.get(f"/console/devices/{METER}").text)
    cases = [
        (METER, {"op": "explode"}, "unknown op &#39;explode&#39;"),
        (METER, {"arg_open": ""}, "missing argument &#39;open&#39;"),
        (METER, {"arg_force": "1"}, "unknown argument &#39;force&#39;"),
        (METER, {"why": "  "}, "say why the command is sent"),
        (METER, {"expires_minutes": "soon"}, "expiry &#39;soon&#39; is not a number"),
        (METER, {"expires_minutes": "20000"}, "expiry must be within"),
        (device_id("speaker", "east-1"), {}, "which takes no &#39;set_valve&#39;"),
        (device_id("water_quality", "east-1"), {}, "which takes no &#39;set_valve&#39;"),
    ]
    for device, change, said in cases:
        answer = console.post(f"/console/devices/{device}/commands", data=_close(token, **change))
        assert answer.status_code == 422 and said in answer.text, (change, answer.text[:300])
        assert 'id="error"' in answer.text
    kept = console.post(f"/console/devices/{METER}/commands",
                        data=_close(token, op="set_valve", why="水压异常", arg_open="")).text
    assert 'value="水压异常"' in kept  # what was typed is shown again with the error
    with psycopg.connect(seeded) as conn:
        conn.execute("UPDATE devices SET lifecycle = 'retired' WHERE device_id = %s", (retired,))
    answer = console.post(f"/console/devices/{retired}/commands", data=_close(token))
    assert answer.status_code == 422 and f"{retired} is retired" in answer.text
    assert "command-set_valve" not in answer.text  # a retired device offers no commands
    assert _commands(seeded) == []


def _add_meters(database_url: str, village: str, count: int) -> list[str]:
    meters = [f"wm-{village}-{n:03d}" for n in range(count)]
    with psycopg.connect(database_url) as conn:
        for meter in meters:
            conn.execute("INSERT INTO devices (device_id, kind, township, village)"
                         " VALUES (%s, 'water_meter', 'east', %s)", (meter, village))
    _valve_reported(database_url, *meters)
    return meters


def test_a_selection_is_confirmed_with_its_count_then_followed_page_by_page(
        console: TestClient, make_user: UserMaker, seeded: str) -> None:
    meters = [METER, *_add_meters(seeded, "east-1", 150)]
    _valve_reported(seeded, METER)
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    listed = console.get("/console/devices", params={"kind": "water_meter", "village": "east-1",
                                                     "status": "offline"}).text
    assert 'id="selection-commands"' in listed and 'id="unapplied"' in listed
    assert 'name="township" value="east"' in listed  # the operator's scope goes with it
    token = form_token(listed)
    chosen = _close(token, kind="water_meter", township="east", village="east-1")
    preview = console.post("/console/commands/confirm", data=chosen)
    assert preview.status_code == 200
    assert re.search(r'id="device-count">151<', preview.text), preview.text
    assert _commands(seeded) == []  # nothing sent before the confirmation
    sent = console.post("/console/commands", data=chosen)
    assert sent.status_code == 303
    command_page = sent.headers["location"]
    first = console.get(command_page).text
    assert 'id="total">151<' in first and 'id="count-queued" data-count="151"' in first
    assert first.count('<tr id="delivery-') == 100 and "hx-trigger" in first
    after = re.search(r'id="next-page" href="[^"?]+\?after=([^"]+)"', first)
    assert after and after.group(1) == sorted(meters)[99]
    rest = console.get(command_page, params={"after": after.group(1)}).text
    assert rest.count('<tr id="delivery-') == 51 and 'id="next-page"' not in rest
    polled = console.get(command_page + "/deliveries", params={"state": "queued"}).text
    assert polled.startswith('<div id="deliveries"') and polled.count('<tr id="delivery-') == 100
    assert _commands(seeded)[0][0] == "user:op"
    command_id = command_page.rsplit("/", 1)[1]
    listed = console.get("/console/commands").text
    row = re.search(rf'<tr id="listed-{command_id}">(.*?)</tr>', listed)
    assert row and "<td>0/151</td><td>151</td>" in row.group(1) and "爆管抢修" in row.group(1)


def test_a_selection_refused_names_why_and_sends_nothing(console: TestClient,
                                                         make_user: UserMaker,
                                                         seeded: str) -> None:
    _add_meters(seeded, "east-1", 3)  # the seed's own meter there never reported a valve
    _valve_reported(seeded, device_id("water_meter", "west-1"), device_id("water_meter", "west-2"))
    make_user("op", Role.OPERATOR, "east")
    make_user("cadre", Role.CADRE, "east", "east-1")
    make_user("west_viewer", Role.VIEWER, "west")
    sign_in(console, "op")
    token = form_token(console.get("/console/devices").text)
    no_valve = console.post("/console/commands/confirm", data=_close(
        token, kind="water_meter", village="east-1"))
    assert no_valve.status_code == 422 and f"{METER} has no valve" in no_valve.text
    _valve_reported(seeded, METER)
    other_township = console.post("/console/commands", data=_close(
        token, kind="water_meter", township="west"))
    assert other_township.status_code == 403 and "may not send set_valve" in other_township.text
    sign_in(console, "cadre")
    assert "selection-commands" not in console.get(
        "/console/devices", params={"kind": "water_meter"}).text
    token = form_token(console.get("/console/devices").text)
    refused = console.post("/console/commands", data=_close(
        token, kind="water_meter", village="east-1", township="east"))
    assert refused.status_code == 403
    assert _commands(seeded) == []
    sign_in(console, "op")
    token = form_token(console.get("/console/devices").text)
    sent = console.post("/console/commands", data=_close(token, kind="water_meter",
                                                         village="east-1", township="east"))
    command_id = sent.headers["location"].rsplit("/", 1)[1]
    assert f"listed-{command_id}" in console.get("/console/commands").text
    sign_in(console, "west_viewer")
    assert console.get(sent.headers["location"]).status_code == 403
    assert f"listed-{command_id}" not in console.get("/console/commands").text


def test_a_meter_carried_by_a_gateway_offers_no_commands_and_refuses_them(
        console: TestClient, make_user: UserMaker, seeded: str) -> None:
    with psycopg.connect(seeded) as conn:
        conn.execute("INSERT INTO devices (device_id, kind, township, village) VALUES"
                     " ('gw-east', 'gateway', 'east', 'east-1'),"
                     " ('wm-carried', 'water_meter', 'east', 'east-1')")
        conn.execute("UPDATE devices SET gateway_id = 'gw-east' WHERE device_id = 'wm-carried'")
    _valve_reported(seeded, "wm-carried")
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    page = console.get("/console/devices/wm-carried")
    assert 'id="carried-no-commands"' in page.text and "command-set_valve" not in page.text
    refused = console.post("/console/devices/wm-carried/commands",
                           data=_close(form_token(page.text)))
    assert refused.status_code == 422 and "carried by gateway gw-east" in refused.text
    assert _commands(seeded) == []
