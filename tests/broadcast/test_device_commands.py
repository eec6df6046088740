"""Device commands: checked before anything is sent, then delivered and followed per device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from broadcast import command_store
from broadcast.command_service import CommandRequest, send_command
from broadcast.device_command import (
    CommandDenied,
    CommandError,
    Target,
    build_command,
    check_targets,
)
from devices.models import SetValveCommand
from ground.local import MosquittoServer
from ground.principal import SYSTEM, Place, Principal, Role
from ground.settings import parse_mqtt_url
from simulators.commands import OFFLINE
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from tests.broadcast.test_delivery_mqtt import daemon, settings_for
from tests.ingest.conftest import wait_until
from village.cli import app

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=1)
METER = Target("wm-1", "water_meter", "东镇", "东村", "active", has_valve=True)


def test_an_op_and_its_arguments_are_checked_against_the_contract() -> None:
    command = build_command("set_valve", {"open": "false"}, "c1", EXPIRES)
    assert isinstance(command, SetValveCommand) and command.open is False
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("open_sesame", {}, "unknown op 'open_sesame'"),
        ("reboot", {}, "unknown op 'reboot'"),  # an event in the contract, never a command
        ("set_valve", {}, "set_valve: missing argument 'open'"),
        ("set_valve", {"open": "maybe"}, "set_valve: open:"),
        ("set_valve", {"open": True, "force": 1}, "set_valve: unknown argument 'force'"),
        ("set_valve", {"open": True, "id": "x"}, "'id' is not an argument"),
    ]
    for op, args, said in cases:
        with pytest.raises(CommandError, match=said):
            build_command(op, args, "c1", EXPIRES)


def test_targets_are_checked_one_by_one_and_the_first_problem_named() -> None:
    speaker = Target("spk-1", "speaker", "东镇", "东村", "active", has_valve=False)
    no_valve = Target("wm-2", "water_meter", "东镇", "东村", "active", has_valve=False)
    retired = Target("wm-3", "water_meter", "东镇", "东村", "retired", has_valve=True)
    carried = Target("wm-4", "water_meter", "东镇", "东村", "active", has_valve=True,
                     gateway_id="gw-1")
    cases = [
        ([METER], ["wm-9"], "'wm-9' is not registered"),
        ([], [], "no device matches"),
        ([METER, speaker], [], "spk-1 is a speaker, which takes no 'set_valve'"),
        ([no_valve], [], "wm-2 has no valve"),
        ([retired], [], "wm-3 is retired"),
        ([METER, carried], [], "wm-4 is carried by gateway gw-1, which relays readings only"),
    ]
    for targets, missing, said in cases:
        with pytest.raises(CommandError, match=said):
            check_targets(SYSTEM, "set_valve", targets, missing)
    check_targets(SYSTEM, "set_valve", [METER])


def test_who_may_close_a_valve_and_where() -> None:
    west = Target("wm-5", "water_meter", "西镇", "西村", "active", has_valve=True)
    cadre = Principal("cadre", Role.CADRE, Place("东镇", "东村"))
    township_operator = Principal("op", Role.OPERATOR, Place("东镇"))
    with pytest.raises(CommandDenied, match="cadre .cadre. may not send set_valve to wm-1"):
        check_targets(cadre, "set_valve", [METER])
    check_targets(township_operator, "set_valve", [METER])
    with pytest.raises(CommandDenied, match="wm-5 in 西镇/西村"):
        check_targets(township_operator, "set_valve", [METER, west])


def _register_meters(database_url: str, ids: list[str], village: str,
                     with_valve: bool = True) -> None:
    with psycopg.connect(database_url) as conn:
        for device_id in ids:
            conn.execute("INSERT INTO devices (device_id, kind, township, village)"
                         " VALUES (%s, 'water_meter', '东镇', %s)", (device_id, village))
            if with_valve:
                conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                             " VALUES (%s, 'valve_open', %s, 1)", (device_id, NOW))
        # Written without ingest: merged into latest_values as an import would be.
        conn.execute("SELECT village_merge_latest()")


def test_bad_input_is_refused_by_name_and_nothing_is_recorded(database_url: str,
                                                                monkeypatch: Any) -> None:
    _register_meters(database_url, ["wm-a1", "wm-a2"], "东村")
    _register_meters(database_url, ["wm-nv"], "东村", with_valve=False)
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()
    cases = [
        (["set_valve", "wm-a1", "--why", "leak"], "missing argument 'open'"),
        (["reboot_now", "wm-a1", "--arg", "open=false", "--why", "x"], "unknown op"),
        (["set_valve", "wm-nv", "--arg", "open=false", "--why", "x"], "wm-nv has no valve"),
        (["set_valve", "wm-zz", "--arg", "open=false", "--why", "x"], "'wm-zz' is not registered"),
        (["set_valve", "wm-a1", "--arg", "open=false"], "say why"),
    ]
    for args, said in cases:
        result = runner.invoke(app, ["devices", "command", *args])
        assert result.exit_code == 1 and said in result.output, result.output
        assert "nothing sent" in result.output
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE devices SET lifecycle = 'retired' WHERE device_id = 'wm-a2'")
        with pytest.raises(CommandError, match="wm-a2 is retired"):
            send_command(conn, SYSTEM, CommandRequest("set_valve", "leak", {"open": False},
                                                      filters={"village": "东村"}), NOW)
        assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)


def _counts(database_url: str, command_id: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return command_store.report(conn, command_id)["counts"]


@pytest.mark.slow
def test_a_villages_200_meters_close_their_valves(
        database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    ids = [f"wm-{n:04d}" for n in range(200)]
    offline, seized = ids[:15], ids[100]
    _register_meters(database_url, ids, "东村")
    _register_meters(database_url, ["wm-other"], "西村")
    devices = [SimDevice(d, "water_meter", village="东村", township="东镇") for d in ids]
    fleet = SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, devices, nb_iot_share=0,
                           behaviours={d: OFFLINE for d in offline},
                           intervals_s={"water_meter": 3600})
    settings = settings_for(database_url, mosquitto, topic_prefix)
    with fleet, daemon(settings, 200) as handle:
        fleet.with_model(seized, lambda model, now: setattr(model.physics, "valve_stuck", True))  # type: ignore[attr-defined]
        request = CommandRequest("set_valve", "爆管抢修，关闭东村总阀", {"open": "false"},
                                 filters={"village": "东村", "kind": "water_meter"})
        with psycopg.connect(database_url) as conn:
            command_id = send_command(conn, SYSTEM, request, datetime.now(UTC))
        wait_until(lambda: _counts(database_url, command_id)
                   == {"done": 184, "rejected": 1, "offline": 15}, 30, "online meters answer")
        assert wait_until(lambda: len(handle.commands.presence) >= 200, 5, "presence")
        fleet.bring_online(offline)
        wait_until(lambda: _counts(database_url, command_id) == {"done": 199, "rejected": 1},
                   30, "the offline meters answer once back")
        with psycopg.connect(database_url) as conn:
            report = command_store.report(conn, command_id)
        by_device = {row["device_id"]: row for row in report["devices"]}
        assert set(by_device) == set(ids)  # the other village's meter got nothing
        assert by_device[seized]["reason"] == "valve seized: it did not move"
        assert all(by_device[d]["state"] == "done" for d in offline)
        closed = [fleet.with_model(d, lambda model, now: model.physics.valve_open)  # type: ignore[attr-defined]
                  for d in ids]
        assert closed.count(False) == 199 and closed[100] is True
    # The daemon's metrics counted each committed command delivery by the state it entered.
    changes = handle.metrics.registry.get_sample_value
    for state, count in (("done", 199), ("rejected", 1), ("offline", 15)):
        assert changes("village_command_delivery_changes_total", {"state": state}) == count, state
    assert (changes("village_command_delivery_changes_total", {"state": "sent"}) or 0) >= 200
    assert changes("village_broadcast_delivery_changes_total", {"state": "done"}) is None
