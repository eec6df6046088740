"""The device command forms (pure): each op's arguments from the contract's models, the ops
a role and scope are offered, and a posted form read back as a request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broadcast.device_command import CommandError
from ground.principal import Place, Principal, Role
from village.console.command_forms import ArgField, op_form, ops_offered, request_from_form

EAST_1 = Place("东镇", "东村")


def test_each_ops_arguments_come_from_the_contracts_command_model() -> None:
    assert op_form("set_valve").fields == (
        ArgField("open", "choice", True, (("false", "set_valve_open_false"),
                                          ("true", "set_valve_open_true"))),)
    volume = op_form("set_volume").fields
    assert volume == (ArgField("volume_pct", "number", True, minimum=0, maximum=100),)
    play = {field.name: field for field in op_form("play").fields}
    assert play["priority"].input == "choice" and not play["priority"].required
    assert [value for value, _ in play["priority"].choices] == ["normal", "alert", "emergency"]
    assert play["text"] == ArgField("text", "text", False, max_length=4000)
    assert play["repeat"].minimum == 1 and play["repeat"].field == "arg_repeat"


def test_ops_offered_follow_the_kind_the_role_and_the_place() -> None:
    operator = Principal("op", Role.OPERATOR, Place("东镇"))
    cadre = Principal("cadre", Role.CADRE, EAST_1)
    assert [f.op for f in ops_offered(operator, "water_meter", EAST_1)] == ["set_valve"]
    assert ops_offered(operator, "water_meter", EAST_1, has_valve=False) == []
    assert ops_offered(operator, "water_meter", Place("西镇", "西村")) == []
    assert ops_offered(cadre, "water_meter", EAST_1) == []
    assert [f.op for f in ops_offered(operator, "speaker")] == ["play", "stop", "set_volume"]
    assert ops_offered(operator, "water_quality", EAST_1) == []
    assert ops_offered(operator, "no_such_kind") == []


def test_a_posted_form_becomes_the_services_request_unchecked() -> None:
    form = {"csrf_token": "x", "op": "set_valve", "arg_open": "false", "arg_note": " ",
            "why": "爆管", "expires_minutes": "15"}
    asked = request_from_form(form, filters={"village": "东村"})
    assert (asked.op, dict(asked.args), asked.why) == ("set_valve", {"open": "false"}, "爆管")
    assert asked.expires_in == timedelta(minutes=15) and asked.filters == {"village": "东村"}
    assert request_from_form({"op": "set_valve"}, ["wm-1"]).expires_in == timedelta(hours=1)
    for bad in ("soon", "nan", "1e30"):
        with pytest.raises(CommandError, match="not a number of minutes"):
            request_from_form({**form, "expires_minutes": bad})
