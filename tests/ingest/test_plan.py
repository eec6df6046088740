"""Admission and batch planning (pure): who may send what, and what a batch stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from devices.decode import Reason, Rejection
from ingest.admit import Admitted, RegisteredDevice, admit, admit_child, admit_gateway
from ingest.handoff import HandOff, Message
from ingest.maintenance import due
from ingest.plan import BatchPlan, Policy, parse, plan_batch, referenced_devices
from ingest.settings import RetentionSettings

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
REGISTRY = {
    "wm-1": RegisteredDevice("water_meter", True, None),
    "wm-old": RegisteredDevice("water_meter", False, None),
    "gw-1": RegisteredDevice("gateway", True, None),
    "gw-2": RegisteredDevice("gateway", True, None),
    "wm-c1": RegisteredDevice("water_meter", True, "gw-1"),
    "wm-c2": RegisteredDevice("water_meter", True, "gw-2"),
    "xx-future": RegisteredDevice("kind_from_the_future", True, None),
}


@pytest.mark.parametrize(("check", "expected"), [
    (lambda: admit(REGISTRY, "wm-1"), "water_meter"),
    (lambda: admit(REGISTRY, "nobody"), Reason.UNKNOWN_DEVICE),
    (lambda: admit(REGISTRY, "wm-old"), Reason.RETIRED_DEVICE),
    (lambda: admit(REGISTRY, "xx-future"), None),
    (lambda: admit_gateway(REGISTRY, "gw-1"), "gateway"),
    (lambda: admit_gateway(REGISTRY, "wm-1"), Reason.NOT_A_GATEWAY),
    (lambda: admit_gateway(REGISTRY, "gw-9"), Reason.UNKNOWN_DEVICE),
    (lambda: admit_child(REGISTRY, "gw-1", "wm-c1"), "water_meter"),
    (lambda: admit_child(REGISTRY, "gw-1", "wm-c2"), Reason.FOREIGN_DEVICE),
    (lambda: admit_child(REGISTRY, "gw-1", "wm-1"), Reason.FOREIGN_DEVICE),
    (lambda: admit_child(REGISTRY, "gw-1", "wm-old"), Reason.RETIRED_DEVICE),
])
def test_admission(check: Callable[[], Admitted | Rejection], expected: str | Reason | None
                   ) -> None:
    result = check()
    if isinstance(expected, Reason):
        assert isinstance(result, Rejection) and result.reason is expected
    else:
        assert not isinstance(result, Rejection)
        assert (result.kind.name if result.kind else None) == expected


def message(topic: str, payload: object, at: datetime = NOW, retain: bool = False) -> Message:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Message(topic, body, mid=1, qos=1, retain=retain, received_at=at)


def plan(*messages: Message, discovery: bool = False) -> BatchPlan:
    parsed = [parse(m, "sv", Policy().limits) for m in messages]
    return plan_batch(parsed, REGISTRY, Policy(discovery=discovery, dead_letter_payload_bytes=8))


def test_a_batch_sorts_readings_presence_and_dead_letters() -> None:
    result = plan(
        message("sv/wm-1/telemetry", {"total_m3": 1, "flow_m3h": "x"}, NOW - timedelta(seconds=5)),
        message("sv/wm-1/telemetry", {"total_m3": 2}),
        message("sv/gw-1/gateway/telemetry", {"wm-c1": {"total_m3": 3}, "wm-c2": {"total_m3": 4}}),
        message("sv/nobody/telemetry", {"total_m3": 5}),
        message("other/wm-1/telemetry", {"total_m3": 6}),
        message("sv/wm-1/cmd", {"op": "set_valve"}),
    )
    assert [(r.device_id, r.value) for r in result.readings] == [
        ("wm-1", 1.0), ("wm-1", 2.0), ("wm-c1", 3.0)]
    assert {p.device_id: p.last_seen for p in result.presence.values()} == {
        "wm-1": NOW, "gw-1": NOW, "wm-c1": NOW}
    letters = [(d.device_id, d.reason, d.partial, d.payload) for d in result.dead_letters]
    assert letters == [
        ("wm-1", "bad_value_type", True, b'{"total_'),
        ("gw-1", "foreign_device", True, b'{"wm-c1"'),
        ("nobody", "unknown_device", False, b'{"total_'),
        (None, "bad_topic", False, b'{"total_'),
        ("wm-1", "bad_topic", False, b'{"op":"s'),
    ]
    assert result.latest_received_at == NOW


def test_retained_status_sets_the_state_but_is_not_hearing_from_the_device() -> None:
    result = plan(message("sv/wm-1/status", b'{"state": "online", "fw": "9"}', retain=True),
                  message("sv/wm-c1/status", b"offline"),
                  message("sv/wm-c2/status", b"online"),
                  message("sv/wm-1/status", b""))  # a cleared retained status: nothing
    presence = result.presence
    assert (presence["wm-1"].state, presence["wm-1"].firmware, presence["wm-1"].last_seen) == (
        "online", "9", None)
    assert (presence["wm-c1"].state, presence["wm-c1"].last_seen) == ("offline", None)
    assert (presence["wm-c2"].state, presence["wm-c2"].last_seen) == ("online", NOW)
    assert result.dead_letters == []


def test_discovery_records_unknown_devices_as_pending() -> None:
    result = plan(message("sv/new-1/telemetry", {"total_m3": 1}, NOW - timedelta(minutes=1)),
                  message("sv/new-1/event", {"type": "reboot"}), discovery=True)
    pending = result.pending["new-1"]
    assert (pending.messages, pending.first_seen, pending.last_seen, pending.last_topic) == (
        2, NOW - timedelta(minutes=1), NOW, "sv/new-1/event")
    assert [d.detail for d in result.dead_letters] == [
        "device new-1 is not registered; recorded as pending"] * 2


def test_referenced_devices_include_gateway_children() -> None:
    parsed = [parse(message("sv/gw-1/gateway/telemetry", {"wm-c1": {}, "wm-9": []}), "sv",
                    Policy().limits),
              parse(message("sv/wm-1/telemetry", b"garbage"), "sv", Policy().limits)]
    assert referenced_devices(parsed) == {"gw-1", "wm-c1", "wm-9", "wm-1"}


def test_referenced_devices_never_include_child_keys_that_are_not_device_ids() -> None:
    # From a meter, which is no gateway: the keys must not reach the registry lookup.
    parsed = [parse(message("sv/wm-1/gateway/telemetry",
                            b'{"wm-\\u0000": {"flow_m3h": 1}, "wm-\\ud800": {}, "x": {}}'),
                    "sv", Policy().limits)]
    assert referenced_devices(parsed) == {"wm-1"}
    result = plan_batch(parsed, REGISTRY, Policy())
    assert [d.reason for d in result.dead_letters] == ["not_a_gateway"]


def test_dead_letter_text_holds_no_nul_or_lone_surrogate() -> None:
    result = plan(message("sv/wm-1/telemetry", b'{"a\\u0000": 1, "b\\ud800": 2}'),
                  message("sv/gw-1/gateway/telemetry", b'{"wm-\\ud800": {}}'))
    texts = [d.detail for d in result.dead_letters] + [
        p["detail"] for d in result.dead_letters for p in d.problems]
    assert len(result.dead_letters) == 2
    assert all(t.encode("utf-8") and "\x00" not in t for t in texts)


class _BrokenRegistry(dict[str, RegisteredDevice]):
    """A registry that fails for one device id: a stand-in for any bug met while planning."""

    def get(self, key: str, default: object = None) -> RegisteredDevice | None:  # type: ignore[override]
        if key == "wm-1":
            raise KeyError("boom: secret=hunter2")
        return super().get(key)


def test_a_message_whose_planning_raises_is_dead_lettered_and_the_batch_goes_on() -> None:
    registry = _BrokenRegistry(REGISTRY)
    parsed = [parse(m, "sv", Policy().limits) for m in (
        message("sv/gw-1/gateway/telemetry", {"wm-c1": {"total_m3": 3}}),
        message("sv/wm-1/telemetry", {"total_m3": 1}),
        message("sv/wm-c2/telemetry", {"total_m3": 2}))]
    result = plan_batch(parsed, registry, Policy())
    assert [(r.device_id, r.value) for r in result.readings] == [("wm-c1", 3.0), ("wm-c2", 2.0)]
    assert [(d.device_id, d.reason, d.detail) for d in result.dead_letters] == [
        ("wm-1", "internal_error", "handling it raised KeyError")]
    assert (result.internal_errors, result.messages) == (1, 3)


def test_handoff_refuses_qos0_past_its_cap_but_never_qos1() -> None:
    handoff = HandOff(cap=2)
    for qos in (1, 1, 0, 1):
        handoff.put(Message("t", b"", 1, qos, False, NOW))
    assert (len(handoff), handoff.dropped_qos0) == (3, 1)
    assert len(handoff.take(2, 0, 0)) == 2 and len(handoff.take(5, 0, 0)) == 1
    assert handoff.take(5, 0, 0) == []


def test_handoff_batches_are_bounded_by_bytes_but_never_empty() -> None:
    handoff = HandOff(cap=100)
    for size in (10, 10, 30, 5):
        handoff.put(Message("t", b"x" * size, 1, 1, False, NOW))
    assert [len(m.payload) for m in handoff.take(10, 0, 0, max_bytes=15)] == [10, 10]
    assert [len(m.payload) for m in handoff.take(10, 0, 0, max_bytes=15)] == [30]
    assert [len(m.payload) for m in handoff.take(10, 0, 0, max_bytes=15)] == [5]


@pytest.mark.parametrize(("now", "rollups", "housekeeping"), [
    (100.0, True, True), (10.0, False, False), (20.0, True, False),
])
def test_maintenance_schedule(now: float, rollups: bool, housekeeping: bool) -> None:
    retention = RetentionSettings(rollup_refresh_s=15, maintenance_interval_s=60)
    jobs = due(now, 0.0, 0.0, retention)
    assert (jobs.rollups, jobs.housekeeping) == (rollups, housekeeping)
