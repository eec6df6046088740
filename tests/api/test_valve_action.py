"""The rules' close_valve action: proposed, confirmed from the phone page, delivered, and each
step on the alert's timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerting import valve_action
from alerting.rules import Rule, RuleError, build_rule
from broadcast.command_engine import CommandEngine
from broadcast.delivery import Happening
from broadcast.inbound import Ack
from ground.links import LinkGrant, sign_link_token
from tests.api.conftest import NOW, device_id, insert_alert
from village.settings import Settings, link_secret

LEAK_RULE = {"name": "wm-leak-flag", "severity": "major", "summary_zh": "水表报告漏水/爆管",
             "summary_en": "Meter reports a leak or burst", "select": {"kind": "water_meter"},
             "condition": {"event": {"types": ["leak", "burst"]}}}


def _rule(close_valve: str, name: str = "wm-leak-flag") -> Rule:
    return build_rule({**LEAK_RULE, "name": name, "close_valve": close_valve}, 0)


def test_only_meter_leak_and_burst_rules_may_close_a_valve() -> None:
    assert build_rule(LEAK_RULE, 0).close_valve == "off"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"select": {"kind": "speaker"}}, "only for water_meter leak and burst"),
        ({"condition": {"event": {"types": ["tamper"]}}}, "only for water_meter"),
        ({"close_valve": "maybe"}, "close_valve"),
    ]
    for change, said in cases:
        with pytest.raises(RuleError, match=said):
            build_rule({**LEAK_RULE, "close_valve": "confirm", **change}, 0)


def _timeline(database_url: str, alert_id: int) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT to_state, detail FROM alert_transitions WHERE alert_id = %s ORDER BY id",
            (alert_id,))]


class Published(list[tuple[str, bytes]]):
    def publish(self, device_id: str, payload: bytes) -> None:
        self.append((device_id, payload))


def _leak_alert(database_url: str, rule: str) -> int:
    alert_id = insert_alert(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE alerts SET rule = %s WHERE id = %s", (rule, alert_id))
        conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                     " VALUES (%s, 'valve_open', %s, 1) ON CONFLICT DO NOTHING",
                     (device_id("water_meter", "east-1"), NOW))
        # Written without ingest: merged into latest_values as an import would be.
        conn.execute("SELECT village_merge_latest()")
    return alert_id


def test_a_burst_alert_closes_its_valve_from_the_phone_page_button(
        client: TestClient, settings: Settings, seeded: str) -> None:
    alert_id = _leak_alert(seeded, "wm-leak-flag")
    rules = {"wm-leak-flag": _rule("confirm")}
    with psycopg.connect(seeded, autocommit=True) as conn:
        assert valve_action.act(conn, rules, NOW) == 1
        assert valve_action.act(conn, rules, NOW) == 0  # once per alert
    assert [s for s, _ in _timeline(seeded, alert_id)][-1] == valve_action.PROPOSED
    expires = datetime.now(UTC) + timedelta(hours=1)
    link = "/a/" + sign_link_token(link_secret(settings), LinkGrant(alert_id, "p-7", expires))
    assert 'id="close-valve"' in client.get(link).text
    pressed = client.post(link + "/close-valve", follow_redirects=False)
    assert pressed.status_code == 303
    assert 'id="close-valve"' not in client.get(link).text
    assert client.post(link + "/close-valve", follow_redirects=False).status_code == 303
    with psycopg.connect(seeded, autocommit=True) as conn:
        commands = conn.execute("SELECT command_id, created_by, op, args FROM device_commands"
                                " WHERE alert_id = %s", (alert_id,)).fetchall()
        assert len(commands) == 1  # the second press sent nothing
        command_id, created_by, op, args = commands[0]
        assert (created_by, op, args) == ("person:p-7", "set_valve", {"open": False})
        published = Published()
        engine = CommandEngine(published, timedelta(seconds=10))
        now = datetime.now(UTC)
        engine.cycle(conn, now)
        meter = device_id("water_meter", "east-1")
        assert [d for d, _ in published] == [meter]
        engine.on_acks(conn, [Ack(meter, command_id, Happening.ACK_DONE, None, now)], now)
    timeline = _timeline(seeded, alert_id)
    assert [s for s, _ in timeline][-3:] == [valve_action.PROPOSED, valve_action.SENT,
                                            "command_done"]
    assert f"command {command_id} by person:p-7" == timeline[-2][1]
    assert timeline[-1][1] == f'set_valve {{"open": false}} to {meter}'


def test_a_rule_that_closes_at_once_sends_without_asking(seeded: str) -> None:
    alert_id = _leak_alert(seeded, "wm-burst")
    with psycopg.connect(seeded, autocommit=True) as conn:
        valve_action.act(conn, {"wm-burst": _rule("now", "wm-burst")}, NOW)
        (by,) = conn.execute("SELECT created_by FROM device_commands WHERE alert_id = %s",
                             (alert_id,)).fetchone() or (None,)
    assert by == "rule:wm-burst"
    assert [s for s, _ in _timeline(seeded, alert_id)][-1] == valve_action.SENT
