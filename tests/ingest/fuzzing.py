"""Hostile inputs for the pure decoder and planner, and what must hold for every one of them.

Shared by the bounded run in the suite (`test_fuzz.py`) and the long run
(`bench/fuzz_ingest.py`). Each property feeds one input through the pure code and checks
what came out: nothing raises (and no `internal_error` hides an exception), no stored value
is non-finite or outside its metric's range (a boolean metric only 0 or 1), no stored time
lies outside the accepted window, and nothing stored or dead-lettered holds text that
PostgreSQL or UTF-8 cannot take.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import strategies as st

from devices.catalogue import KIND_BY_NAME, KINDS
from devices.contract import METRIC_NAME_PATTERN, is_valid_device_id
from devices.decode import (
    Decoded,
    Limits,
    decode_events,
    decode_status,
    decode_telemetry,
    parse_json,
)
from devices.kind import DeviceKind
from devices.rejection import Reason, Rejection
from devices.storable import json_problem, text_problem
from ingest.admit import RegisteredDevice
from ingest.handoff import Message
from ingest.plan import BatchPlan, Policy, parse, plan_batch

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LIMITS = Limits()
EARLIEST = NOW - LIMITS.accepted_lateness
LATEST = NOW + LIMITS.future_tolerance
PREFIX = "sv"
# One registered device per kind, and a gateway carrying a meter.
REGISTRY = {f"dev-{kind.name}": RegisteredDevice(kind.name, True, None) for kind in KINDS}
REGISTRY["wm-child"] = RegisteredDevice("water_meter", True, "dev-gateway")
REGISTRY["wm-retired"] = RegisteredDevice("water_meter", False, None)
DEVICE_IDS = sorted(REGISTRY) + ["nobody", "wm-\x00", "wm-\ud800", "x"]

# --- strategies -------------------------------------------------------------------------

EDGE_CHARACTERS = st.sampled_from([
    "\x00", "\ud800", "\udfff", "\udbff", "\udc00", "\ufeff", "\ufffe", "\uffff", "\u202e",
    "\u0301", "\U0001f600", "\x7f", "\x1b", "\n", '"', "\\", "/", "+", "#", "$", "é", "中"])
TEXTS = st.text(alphabet=st.one_of(st.characters(codec=None), EDGE_CHARACTERS), max_size=24)
EDGE_INTS = st.sampled_from([
    0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30, -(10**30),
    -62135596800001, -62135596800000, 253402300799999, 253402300800000,
    NOW_MS, NOW_MS - int(LIMITS.accepted_lateness.total_seconds() * 1000),
    NOW_MS - int(LIMITS.accepted_lateness.total_seconds() * 1000) - 1,
    NOW_MS + int(LIMITS.future_tolerance.total_seconds() * 1000),
    NOW_MS + int(LIMITS.future_tolerance.total_seconds() * 1000) + 1,
    NOW_MS // 1000])
INTS = st.one_of(st.integers(), EDGE_INTS)
FLOATS = st.one_of(st.floats(), st.sampled_from([
    5e-324, -5e-324, 1e-320, -0.0, 0.5, 1.0000000000000002, 0.9999999999999999,
    1.7976931348623157e308, -1.7976931348623157e308, math.inf, -math.inf, math.nan]))
ISO_TIMES = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat),
    st.datetimes(min_value=(EARLIEST - timedelta(days=1)).replace(tzinfo=None),
                 max_value=(LATEST + timedelta(days=1)).replace(tzinfo=None),
                 timezones=st.just(UTC)).map(datetime.isoformat),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-23:59",
                     "2026-11-22T08:00:00", "2026-11-22T08:00:00Z ", "2026-13-01T00:00:00Z",
                     "2026-11-22T08:00:00+08:00", "+002026-11-22T08:00:00Z"]))
TIMESTAMPS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, ISO_TIMES, TEXTS,
                       st.integers(NOW_MS - 31 * 86_400_000, NOW_MS + 700_000))
SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXTS)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TEXTS, inner, max_size=6),
    max_leaves=40)
METRIC_NAMES = st.one_of(
    st.sampled_from(sorted({spec.name for kind in KINDS for spec in kind.metrics})),
    st.from_regex(METRIC_NAME_PATTERN, fullmatch=True), TEXTS,
    st.sampled_from(["ts", "seq", "values", "Total", "a'; DROP TABLE readings; --", "x" * 65]))


def nested(depth: int, as_dict: bool) -> object:
    """A JSON value `depth` levels deep."""
    value: object = 1
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


DEEP = st.builds(nested, st.integers(1, 900), st.booleans())


@st.composite
def reading_sets(draw: st.DrawFn, kind: DeviceKind) -> dict[str, Any]:
    """A reading set of a kind, valid or nearly: in-range values, then edge ones."""
    body: dict[str, Any] = {}
    for spec in draw(st.lists(st.sampled_from(kind.metrics), max_size=len(kind.metrics),
                              unique_by=lambda spec: spec.name)):
        body[spec.name] = draw(st.one_of(
            st.booleans() if spec.boolean else
            st.floats(spec.minimum, spec.maximum, allow_nan=False),
            st.floats(spec.minimum - 1, spec.maximum + 1), INTS, FLOATS, st.booleans(),
            SCALARS))
    body.update(draw(st.dictionaries(METRIC_NAMES, SCALARS, max_size=3)))
    if draw(st.booleans()):
        body["ts"] = draw(TIMESTAMPS)
    if draw(st.booleans()):
        body["seq"] = draw(st.one_of(INTS, SCALARS))
    if draw(st.integers(0, 5)) == 0:
        body = {"ts": body.pop("ts", None), "values": body}
    return body


@st.composite
def telemetry_documents(draw: st.DrawFn, kind: DeviceKind) -> object:
    """A telemetry document of a kind: a reading set, an array of them, or a mutation."""
    return draw(st.one_of(
        reading_sets(kind),
        st.lists(reading_sets(kind), max_size=8),
        st.builds(lambda entry, n: [entry] * n, reading_sets(kind), st.integers(990, 1010)),
        st.builds(_mutated, reading_sets(kind), JSON_VALUES, TEXTS),
        JSON_VALUES, DEEP))


def _mutated(body: dict[str, Any], value: object, key: str) -> dict[str, Any]:
    """A reading set with one value replaced (or a key added) by something arbitrary."""
    target = next(iter(body), key)
    return {**body, target: value}


EVENTS = st.one_of(
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["motion", "reboot", "leak"]), TEXTS)},
        optional={"ts": TIMESTAMPS, "severity": st.one_of(st.just("major"), TEXTS),
                  "snapshot_url": st.one_of(st.just("https://x/y.jpg"), TEXTS),
                  "detail": st.one_of(JSON_VALUES, DEEP)}),
    JSON_VALUES, DEEP)
STATUS_DOCUMENTS = st.one_of(
    st.fixed_dictionaries({"state": st.sampled_from(["online", "offline", "asleep"])},
                          optional={"fw": TEXTS, "ip": TEXTS, "extra": JSON_VALUES}),
    JSON_VALUES)
GATEWAY_DOCUMENTS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(DEVICE_IDS), TEXTS),
                    telemetry_documents(KIND_BY_NAME["water_meter"]), max_size=4),
    JSON_VALUES)


def encode(document: object, ascii_only: bool) -> bytes:
    """JSON bytes as a device might send them (NaN and lone surrogates escaped as JSON does)."""
    try:
        return orjson.dumps(document) if not ascii_only else json.dumps(document).encode()
    except (TypeError, ValueError, OverflowError, RecursionError, orjson.JSONEncodeError):
        return json.dumps(document, ensure_ascii=True).encode()


@st.composite
def mutated_bytes(draw: st.DrawFn, payload: bytes) -> bytes:
    """The payload with a few bytes flipped, inserted or cut."""
    data = bytearray(payload)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(("flip", "insert", "cut")))
        if operation == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:at + draw(st.integers(1, 8))]
    return bytes(data)


@st.composite
def payloads(draw: st.DrawFn, documents: st.SearchStrategy[object]) -> bytes:
    """Bytes on the wire: an encoded document, perhaps mangled, or noise."""
    encoded = encode(draw(documents), draw(st.booleans()))
    return draw(st.one_of(
        st.just(encoded), mutated_bytes(encoded), st.binary(max_size=200),
        st.integers(1, 4000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 4000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth)))


CHANNEL_DOCUMENTS: dict[str, st.SearchStrategy[object]] = {
    "telemetry": st.sampled_from(KINDS).flatmap(telemetry_documents),
    "event": EVENTS,
    "status": STATUS_DOCUMENTS,
    "gateway/telemetry": GATEWAY_DOCUMENTS,
}
TOPICS = st.one_of(
    st.builds(lambda device, channel: f"{PREFIX}/{device}/{channel}",
              st.sampled_from(DEVICE_IDS), st.sampled_from(sorted(CHANNEL_DOCUMENTS))),
    st.builds(lambda device, channel: f"{PREFIX}/{device}/{channel}", TEXTS,
              st.sampled_from([*CHANNEL_DOCUMENTS, "cmd", "cmd/ack", ""])),
    TEXTS)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """One received message: a topic (mostly well formed) and a payload for its channel."""
    name = draw(TOPICS)
    channel = name.split("/", 2)[-1]
    documents = CHANNEL_DOCUMENTS.get(channel, JSON_VALUES)
    payload = draw(st.one_of(payloads(documents), st.sampled_from(
        [b"online", b"offline", b'"online"', b"", b"\xff"])))
    return Message(name, payload, 1, 1, draw(st.booleans()), NOW)


# --- properties -------------------------------------------------------------------------

def check_readings(decoded: Decoded | BatchPlan) -> None:
    """Every stored reading is finite, possible for its metric, and inside the window."""
    for reading in decoded.readings:
        assert isinstance(reading.value, float) and math.isfinite(reading.value), reading
        assert EARLIEST <= reading.ts <= LATEST, reading
        assert METRIC_NAME_PATTERN.fullmatch(reading.metric), reading
        assert is_valid_device_id(reading.device_id), reading
        registered = REGISTRY.get(reading.device_id)
        kind = registered.kind if registered else None
        spec = kind.metric(reading.metric) if kind else None
        if spec is not None:
            assert spec.admits(reading.value), reading
    for event in decoded.events:
        assert EARLIEST <= event.ts <= LATEST, event
        assert json_problem(event.body) is None, event
        assert METRIC_NAME_PATTERN.fullmatch(event.type), event


def check_rejections(rejections: list[Rejection]) -> None:
    """Every refusal has a known reason."""
    assert all(isinstance(r.reason, Reason) for r in rejections)
    assert all(r.reason is not Reason.INTERNAL_ERROR for r in rejections), rejections


def telemetry_property(case: tuple[DeviceKind, object]) -> None:
    """Decoding a telemetry document of a kind."""
    kind, document = case
    decoded = decode_telemetry(f"dev-{kind.name}", document, kind, NOW, LIMITS)
    check_readings(decoded)
    check_rejections(decoded.rejections)


def event_property(document: object) -> None:
    """Decoding an event document."""
    decoded = decode_events("dev-camera", document, NOW, LIMITS)
    check_readings(decoded)
    check_rejections(decoded.rejections)


def bytes_property(payload: bytes) -> None:
    """Parsing arbitrary bytes as JSON, and as a status."""
    parsed = parse_json(payload, LIMITS)
    assert isinstance(parsed, Rejection) or parsed is None or isinstance(
        parsed, dict | list | str | int | float | bool)
    status = decode_status(payload, LIMITS)
    if not isinstance(status, Rejection):
        assert json_problem(status.model_dump()) is None, status


def plan_property(batch: list[Message]) -> None:
    """Planning a batch of arbitrary messages against a registry."""
    plan = plan_batch([parse(m, PREFIX, LIMITS) for m in batch], REGISTRY, Policy())
    assert plan.internal_errors == 0, [d.detail for d in plan.dead_letters]
    assert plan.messages == len(batch)
    check_readings(plan)
    for letter in plan.dead_letters:
        assert text_problem(letter.topic) is None and text_problem(letter.detail) is None
        assert json_problem(letter.problems) is None, letter.problems
    for presence in plan.presence.values():
        assert is_valid_device_id(presence.device_id)
        for text in (presence.firmware, presence.ip):
            assert text is None or text_problem(text) is None


# Each property: the check, and the inputs it is given.
PROPERTIES: dict[str, tuple[Callable[[Any], None], st.SearchStrategy[Any]]] = {
    "telemetry": (telemetry_property, st.sampled_from(KINDS).flatmap(
        lambda kind: st.tuples(st.just(kind), telemetry_documents(kind)))),
    "events": (event_property, EVENTS),
    "bytes": (bytes_property, st.one_of(st.binary(max_size=300),
                                        payloads(CHANNEL_DOCUMENTS["telemetry"]))),
    "plan": (plan_property, st.lists(messages(), min_size=1, max_size=6)),
}
