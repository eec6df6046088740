"""The pure decoder, table-driven: readings out of good payloads, precise reasons for bad ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devices.catalogue import kind_named
from devices.decode import (
    Limits,
    Reason,
    Rejection,
    decode_events,
    decode_status,
    decode_telemetry,
    parse_json,
    parse_timestamp,
    split_gateway,
)

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
LIMITS = Limits()
METER = kind_named("water_meter")
PROBE = kind_named("water_quality")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"hello", Reason.INVALID_JSON),
    (b'{"a": 1', Reason.INVALID_JSON),
    (b"\xff\xfe{}", Reason.NOT_UTF8),
    (b'{"a": "\xc3"}', Reason.NOT_UTF8),
    (b"[" * 100_000, Reason.INVALID_JSON),
    (b"x" * (LIMITS.max_payload_bytes + 1), Reason.TOO_LARGE),
])
def test_unparsable_payloads(payload: bytes, reason: Reason) -> None:
    result = parse_json(payload, LIMITS)
    assert isinstance(result, Rejection) and result.reason is reason


@pytest.mark.parametrize("payload", [
    b'{"v": NaN}', b'{"v": Infinity}', b'{"v": -Infinity}', b'{"v": 1e309}',
    b'{"v": 123456789012345678901234567890}',
])
def test_non_standard_numbers_parse_so_they_can_be_refused_per_metric(payload: bytes) -> None:
    assert isinstance(parse_json(payload, LIMITS), dict)


@pytest.mark.parametrize(("raw", "expected"), [
    (None, NOW),
    ("2026-11-22T16:00:00+08:00", NOW),
    ("2026-11-22T08:00:00Z", NOW),
    ("2026-11-22T07:59:59.250+00:00", NOW - timedelta(milliseconds=750)),
    (int(NOW.timestamp() * 1000), NOW),
    ("2026-11-22T08:00:00", Reason.BAD_TIMESTAMP),  # no offset
    ("yesterday", Reason.BAD_TIMESTAMP),
    ("2026-11-22T08:00:00+00:00" + " " * 40, Reason.BAD_TIMESTAMP),
    (True, Reason.BAD_TIMESTAMP),
    (1.5e12, Reason.BAD_TIMESTAMP),
    (10**20, Reason.BAD_TIMESTAMP),
    ("2026-11-22T09:00:00Z", Reason.TS_IN_FUTURE),
    ("2026-11-22T08:09:59Z", NOW + timedelta(minutes=9, seconds=59)),
    ("1970-01-01T00:00:00Z", Reason.TS_TOO_OLD),
    (int(NOW.timestamp()), Reason.TS_TOO_OLD),  # epoch seconds, not milliseconds
    ("2026-10-01T00:00:00Z", Reason.TS_TOO_OLD),
])
def test_timestamps(raw: object, expected: datetime | Reason) -> None:
    result = parse_timestamp(raw, NOW, LIMITS)
    if isinstance(expected, Reason):
        assert isinstance(result, Rejection) and result.reason is expected
    else:
        assert result == expected


@pytest.mark.parametrize(("document", "readings", "reasons"), [
    ({"total_m3": 1.5, "flow_m3h": -0.2}, {"total_m3": 1.5, "flow_m3h": -0.2}, []),
    ({"valve_open": True, "seq": 4}, {"valve_open": 1.0}, []),
    ({"values": {"total_m3": 2}}, {"total_m3": 2.0}, []),
    ({"ts": None, "values": {"total_m3": 2}, "battery_v": 3.0}, {"total_m3": 2.0,
                                                                 "battery_v": 3.0}, []),
    ({"values": [1]}, {}, [Reason.WRONG_SHAPE]),
    ({"total_m3": "1"}, {}, [Reason.BAD_VALUE_TYPE]),
    ({"total_m3": None}, {}, [Reason.BAD_VALUE_TYPE]),
    ({"total_m3": [1]}, {}, [Reason.BAD_VALUE_TYPE]),
    ({"total_m3": float("nan")}, {}, [Reason.NON_FINITE]),
    ({"total_m3": 10**400}, {}, [Reason.NON_FINITE]),
    ({"total_m3": -1}, {}, [Reason.OUT_OF_RANGE]),
    ({"total_m3": 1, "battery_v": 99}, {"total_m3": 1.0}, [Reason.OUT_OF_RANGE]),
    ({"Total": 1}, {}, [Reason.BAD_METRIC_NAME]),
    ({"a'; DROP TABLE x; --": 1}, {}, [Reason.BAD_METRIC_NAME]),
    ({"a\nb": 1}, {}, [Reason.BAD_METRIC_NAME]),
    ({"x" * 65: 1}, {}, [Reason.BAD_METRIC_NAME]),
    ({"seq": "one", "total_m3": 1}, {"total_m3": 1.0}, [Reason.BAD_VALUE_TYPE]),
    ({f"m{i}": 1 for i in range(129)}, {}, [Reason.TOO_MANY_METRICS]),
    ({"ts": "later", "total_m3": 1}, {}, [Reason.BAD_TIMESTAMP]),
    ({"new_metric_v": 1}, {"new_metric_v": 1.0}, []),  # unknown metrics are kept
    ({"new_flag": True}, {"new_flag": 1.0}, []),  # an unknown metric may be a boolean one
    # Below year 1 in epoch milliseconds: refused, not raised (it stopped ingest once).
    ({"ts": -62135596800001, "flow_m3h": 1}, {}, [Reason.BAD_TIMESTAMP]),
    ({"ts": -62135596800000, "flow_m3h": 1}, {}, [Reason.TS_TOO_OLD]),
    ({"ts": -(2**63), "flow_m3h": 1}, {}, [Reason.BAD_TIMESTAMP]),
    ({"ts": 253402300800000, "flow_m3h": 1}, {}, [Reason.BAD_TIMESTAMP]),
    # Booleans only for boolean metrics, and a boolean metric only 0 or 1.
    ({"rssi_dbm": True}, {}, [Reason.BAD_VALUE_TYPE]),
    ({"flow_m3h": False, "total_m3": 1}, {"total_m3": 1.0}, [Reason.BAD_VALUE_TYPE]),
    ({"valve_open": 0.5}, {}, [Reason.OUT_OF_RANGE]),
    ({"valve_open": 1e-320}, {}, [Reason.OUT_OF_RANGE]),
    ({"valve_open": 0}, {"valve_open": 0.0}, []),
    ({"valve_open": 1.0}, {"valve_open": 1.0}, []),
    ({"valve_open": False}, {"valve_open": 0.0}, []),
    (7, {}, [Reason.WRONG_SHAPE]),
    ([], {}, []),
    ([{"total_m3": 1}] * 1001, {}, [Reason.TOO_MANY_ENTRIES]),
])
def test_reading_sets(document: object, readings: dict[str, float], reasons: list[Reason]) -> None:
    decoded = decode_telemetry("wm-1", document, METER, NOW, LIMITS)
    assert {r.metric: r.value for r in decoded.readings} == readings
    assert [r.reason for r in decoded.rejections] == reasons
    assert all(r.ts == NOW and r.device_id == "wm-1" for r in decoded.readings)


def test_store_and_forward_array_keeps_each_entrys_time_and_counts_unknown_metrics() -> None:
    document = [{"ts": (NOW - timedelta(minutes=15 * i)).isoformat(), "ph": 7, "foo_x": 1}
                for i in range(96)]
    decoded = decode_telemetry("wq-1", document, PROBE, NOW, LIMITS)
    assert len(decoded.readings) == 192 and not decoded.rejections
    assert decoded.unknown_metrics == 96
    assert {r.ts for r in decoded.readings} == {NOW - timedelta(minutes=15 * i) for i in range(96)}


def test_a_bad_entry_in_an_array_names_its_index() -> None:
    decoded = decode_telemetry("wq-1", [{"ph": 7}, {"ph": 15}, "x"], PROBE, NOW, LIMITS)
    assert [(r.reason, r.entry, r.metric) for r in decoded.rejections] == [
        (Reason.OUT_OF_RANGE, 1, "ph"), (Reason.WRONG_SHAPE, 2, None)]


def nested(depth: int) -> object:
    """A JSON value `depth` lists deep."""
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("document", "types", "reasons"), [
    ({"type": "motion"}, ["motion"], []),
    ({"type": "tamper", "severity": "major", "snapshot_url": "https://x/y.jpg",
      "detail": {"zone": 1}}, ["tamper"], []),
    ({"type": "brand_new_type"}, ["brand_new_type"], []),
    ([{"type": "motion"}, {"type": "person", "ts": "2026-11-22T07:59:00Z"}],
     ["motion", "person"], []),
    ({"severity": "info"}, [], [Reason.BAD_EVENT]),
    ({"type": "Motion!"}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "severity": "apocalyptic"}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "ts": "soon"}, [], [Reason.BAD_TIMESTAMP]),
    ("motion", [], [Reason.WRONG_SHAPE]),
    # What PostgreSQL's jsonb or UTF-8 cannot hold is refused before it reaches SQL.
    ({"type": "motion", "detail": {"x": "a\x00b"}}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "detail": {"\ud800": 1}}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "snapshot_url": "https://x/\udfff"}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "detail": {"v": float("nan")}}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "detail": {"deep": nested(40)}}, [], [Reason.BAD_EVENT]),
    ({"type": "motion", "detail": {"deep": nested(20), "text": "\u00e9\U0001f600"}},
     ["motion"], []),
])
def test_events(document: object, types: list[str], reasons: list[Reason]) -> None:
    decoded = decode_events("cam-1", document, NOW, LIMITS)
    assert [e.type for e in decoded.events] == types
    assert [r.reason for r in decoded.rejections] == reasons


@pytest.mark.parametrize(("payload", "state"), [
    (b"online", "online"), (b"offline", "offline"), (b'"online"', "online"), (b"ONLINE\n", "online"),
    (b'{"state": "online", "fw": "1.2.3", "ip": "10.1.2.3"}', "online"),
    (b'{"state": "asleep"}', Reason.BAD_STATUS), (b"maybe", Reason.BAD_STATUS),
    (b"[1]", Reason.BAD_STATUS),
    (b'{"state": "online", "fw": "1.2\\u0000"}', Reason.BAD_STATUS),
    (b'{"state": "online", "ip": "\\ud800"}', Reason.BAD_STATUS),
    (b'{"state": "online", "note\\u0000": 1}', Reason.BAD_STATUS),
])
def test_status(payload: bytes, state: str | Reason) -> None:
    result = decode_status(payload, LIMITS)
    if isinstance(state, Reason):
        assert isinstance(result, Rejection) and result.reason is state
    else:
        assert not isinstance(result, Rejection) and result.state == state


def test_gateway_split_refuses_children_that_are_not_device_ids() -> None:
    children, rejections = split_gateway({"wm-1": {"total_m3": 1}, "x": {}, "a/b": {}})
    assert children == [("wm-1", {"total_m3": 1})]
    assert [r.reason for r in rejections] == [Reason.WRONG_SHAPE] * 2
    assert split_gateway([1])[1][0].reason is Reason.WRONG_SHAPE


def test_gateway_split_refuses_children_with_nul_or_lone_surrogates() -> None:
    children, rejections = split_gateway({"wm-\x00": {"flow_m3h": 1}, "wm-\ud800": {},
                                          "wm-1": {}})
    assert children == [("wm-1", {})]
    assert [r.reason for r in rejections] == [Reason.WRONG_SHAPE] * 2
    assert all("\x00" not in r.detail and "\ud800" not in r.detail for r in rejections)
