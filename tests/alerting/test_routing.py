"""Routing as pure functions: strict config, inheritance, the ladder, on-duty shifts,
group waits, repeats and escalation against a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerting.dispatch import OpenAlert, plan
from alerting.routing import RoutingError, build_routing, ladder, people_at, route_for

from .helpers import alert_view

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai, a Wednesday
CONSOLE = [{"name": "c", "type": "console"}]


def person(pid: str, level: str, **place: str) -> dict[str, Any]:
    return {"id": pid, "name": pid, "channels": ["c"], "attached": [{"level": level, **place}]}


DOC: dict[str, Any] = {
    "receivers": CONSOLE,
    "people": [
        person("grid-worker", "grid", township="T1", village="V1", grid="G1"),
        person("cadre", "village", township="T1", village="V1"),
        {**person("night-cadre", "village", township="T1", village="V1"),
         "on_duty": [{"from": "20:00", "to": "08:00"}]},
        person("office", "township", township="T1"),
        person("water-bureau", "county", bureau="water"),
    ],
    "route": {"repeat_interval": "1h", "escalate_after": {"critical": "5m"},
              "routes": [{"match": {"kind": "camera"}, "group_by": ["rule", "township"],
                          "routes": [{"match": {"severity": "critical"}, "repeat_interval": "10m"}]}]},
}


@pytest.mark.parametrize(("change", "message"), [
    ({"people": [{"id": "x", "name": "x", "channels": ["nope"],
                  "attached": [{"level": "village", "township": "T1", "village": "V1"}]}]},
     "people.0 (x): channels: no receiver named 'nope'"),
    ({"people": [{"id": "x", "name": "x", "channels": ["c"], "attached": [{"level": "village"}]}]},
     "people.0.attached.0"),
    ({"route": {"receivers": ["ghost"]}}, "route /: receivers: no receiver named 'ghost'"),
    ({"route": {"group_wiat": "1s"}}, "route.group_wiat: Extra inputs are not permitted"),
    ({"receivers": [{"name": "w", "type": "webhook", "options": {"url": "ftp://x"}}]}, "receivers.0"),
    ({"receivers": [{"name": "w", "type": "pager"}]}, "unknown receiver type 'pager'"),
    ({"route": {"escalate_after": {"urgent": "1m"}}}, "unknown severity 'urgent'"),
    ({"timezone": "Mars/Olympus"}, "timezone: unknown zone"),
])
def test_routing_files_are_strict_and_name_the_field(change, message):
    with pytest.raises(RoutingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_routing({**DOC, **change}, "routing.yaml")


def test_children_inherit_what_they_do_not_set():
    routing = build_routing(DOC)
    camera_critical = route_for(routing.root, {"kind": "camera", "severity": "critical"})
    assert camera_critical.group_by == ("rule", "township")  # from its parent
    assert camera_critical.repeat_interval_s == 600  # its own
    assert camera_critical.escalate_after_s["critical"] == 300  # from the root
    assert camera_critical.escalate_after_s["major"] == 1800  # from the defaults
    assert route_for(routing.root, {"kind": "water_quality"}).group_by == ("rule", "township", "village")


def test_the_ladder_climbs_from_grid_to_the_county_bureau_and_skips_empty_rungs():
    routing = build_routing(DOC)
    rungs = ladder({"township": "T1", "village": "V1", "grid": "G1"}, "water_quality", routing)
    assert [r.level for r in rungs] == ["grid", "village", "township", "county"]
    assert [r.level for r in ladder({"township": "T1", "village": "V2"}, "camera", routing)] == ["township"]


def test_on_duty_shifts_in_local_time():
    routing = build_routing(DOC)
    village = ladder({"township": "T1", "village": "V1"}, None, routing)[0]
    assert [p.id for p in people_at(routing, village, NOW)] == ["cadre"]
    night = NOW + timedelta(hours=13)  # 23:00 local
    assert {p.id for p in people_at(routing, village, night)} == {"cadre", "night-cadre"}


def alert(i: int, **overrides: Any) -> OpenAlert:
    labels = {"rule": "r", "severity": "critical", "condition": "threshold", "kind": "water_quality",
              "township": "T1", "village": "V1", "device_id": f"d{i}"}
    on_view = {k: v for k, v in overrides.items() if k in ("state", "acknowledged_at")}
    view = alert_view(alert_id=i, device_id=f"d{i}", started_at=NOW, **on_view)
    fields: dict[str, Any] = {"view": view, "labels": labels, "created_at": NOW,
                              "notified_level": -1, "last_notified_at": None,
                              "escalated_at": None, "resolved_notified": False}
    return OpenAlert(**{**fields, **{k: v for k, v in overrides.items() if k not in on_view}})


@pytest.mark.parametrize(("overrides", "at_minutes", "expected"), [
    ({}, 0, [("firing", 0)]),
    ({}, -1, []),  # the alert was created after `now`: still in its group wait (10 s)
    ({"notified_level": 0, "last_notified_at": NOW, "escalated_at": NOW}, 4, []),
    ({"notified_level": 0, "last_notified_at": NOW, "escalated_at": NOW}, 5, [("escalation", 1)]),
    ({"notified_level": 2, "last_notified_at": NOW, "escalated_at": NOW}, 6, []),  # top of the ladder
    ({"notified_level": 2, "last_notified_at": NOW, "escalated_at": NOW}, 60, [("repeat", 2)]),
    ({"notified_level": 0, "last_notified_at": NOW, "escalated_at": NOW, "acknowledged_at": NOW}, 90, []),
    ({"state": "resolved", "notified_level": 1}, 1, [("resolved", 1)]),
    ({"state": "resolved", "notified_level": 1, "resolved_notified": True}, 1, []),
])
def test_what_is_due(overrides, at_minutes, expected):
    routing = build_routing(DOC)
    result = plan([alert(1, **overrides)], routing, [], NOW + timedelta(minutes=at_minutes, seconds=10))
    assert [(s.action, s.level) for s in result.sends] == expected


def test_a_resolved_alert_nobody_heard_closes_quietly():
    result = plan([alert(1, state="resolved")], build_routing(DOC), [], NOW)
    assert result.sends == [] and result.quiet == [1]


def test_alerts_of_one_rule_and_village_go_out_as_one_group():
    result = plan([alert(i) for i in range(5)], build_routing(DOC), [], NOW + timedelta(seconds=10))
    (send,) = result.sends
    assert len(send.alerts) == 5 and send.place == {"township": "T1", "village": "V1"}


def test_the_plan_names_every_target_so_dispatch_only_renders_and_sends():
    routing = build_routing({**DOC, "people": [
        *DOC["people"], {**person("english-cadre", "village", township="T1", village="V1"),
                         "language": "en"}],
        "route": {**DOC["route"], "receivers": ["c"]}})
    day = NOW + timedelta(seconds=10)
    (send,) = plan([alert(1)], routing, [], day, "zh").sends
    assert [(t.receiver, t.recipient and t.recipient.person_id, t.language, t.who)
            for t in send.targets] == [
        ("c", "cadre", "zh", "cadre"), ("c", "english-cadre", "en", "english-cadre"),
        ("c", None, "zh", "receiver:c")]
    night = NOW + timedelta(hours=13)  # 23:00 local: the night cadre is on duty too
    (send,) = plan([alert(1)], routing, [], night, "zh").sends
    assert [t.who for t in send.targets if t.recipient] == ["cadre", "night-cadre", "english-cadre"]
    # A resolution after escalating to the township tells everyone who was told on the way.
    resolved = alert(1, state="resolved", notified_level=1)
    (send,) = plan([resolved], routing, [], day, "zh").sends
    assert [t.who for t in send.targets] == ["cadre", "english-cadre", "office", "receiver:c"]
