"""Decode contract payloads into typed readings, events and statuses, or typed rejections.

Pure: no I/O, no clock (the time of receipt is an argument), and nothing raises into the
message loop. A reading set with some good and some bad metrics yields the good readings
and one rejection per bad metric.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from devices.contract import DEVICE_ID_PATTERN, METRIC_NAME_PATTERN, Limits
from devices.kind import DeviceKind
from devices.metrics import MetricSpec
from devices.models import Event, Status
from devices.rejection import Reason, Rejection, shown
from devices.storable import json_problem
from devices.timestamps import Window, parse_timestamp, plausible_window
from ground.validation import first_error


class Reading(NamedTuple):
    """One stored value: a device's metric at a time (a tuple in the column order of COPY)."""

    device_id: str
    metric: str
    ts: datetime
    value: float


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One device event, with its whole object kept."""

    device_id: str
    ts: datetime
    type: str
    severity: str
    body: dict[str, Any]


@dataclass(slots=True)
class Decoded:
    """What a telemetry or event payload yielded."""

    readings: list[Reading] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    unknown_metrics: int = 0


RESERVED_KEYS = frozenset(("ts", "seq", "values"))


def parse_json(payload: bytes, limits: Limits) -> Any | Rejection:
    """Parse a payload as UTF-8 JSON within the size limit."""
    if len(payload) > limits.max_payload_bytes:
        return Rejection(
            Reason.TOO_LARGE,
            f"payload is {len(payload)} bytes; the limit is {limits.max_payload_bytes}",
        )
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    # The slow path tells invalid UTF-8 apart, and lets NaN, Infinity and integers beyond
    # 64 bits through as values so they are refused per metric, with the rest stored.
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(Reason.NOT_UTF8, f"not UTF-8 at byte {exc.start}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejection(Reason.INVALID_JSON, f"not JSON: {str(exc)[:120]}")


def _metric_value(name: str, raw: object, spec: MetricSpec | None) -> float | Rejection:
    if isinstance(raw, bool):
        # true/false is a boolean metric's value (an unknown metric may be one), never a number.
        if spec is None or spec.boolean:
            return 1.0 if raw else 0.0
        return Rejection(Reason.BAD_VALUE_TYPE, f"{name} must be a number, got {str(raw).lower()}",
                         metric=name)
    if not isinstance(raw, int | float):
        kind_of = "null" if raw is None else type(raw).__name__
        return Rejection(Reason.BAD_VALUE_TYPE, f"{name} must be a number, got {kind_of}",
                         metric=name)
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        return Rejection(Reason.NON_FINITE, f"{name} is {value}; only finite numbers are stored",
                         metric=name)
    if spec is not None and spec.boolean and not spec.admits(value):
        return Rejection(Reason.OUT_OF_RANGE, f"{name} must be 0 or 1 (false or true), got {value:g}",
                         metric=name)
    if spec is not None and not spec.admits(value):
        return Rejection(
            Reason.OUT_OF_RANGE,
            f"{name}={value:g} is outside the possible range {spec.minimum:g} to {spec.maximum:g}"
            f" {spec.unit}",
            metric=name,
        )
    return value


# Beyond this an int does not fit a float; such values take the slow path (refused).
_LARGEST_INT = int(sys.float_info.max)
_NO_METRICS: dict[str, MetricSpec] = {}


def _decode_reading_set(
    device_id: str,
    entry: object,
    index: int | None,
    kind: DeviceKind | None,
    received_at: datetime,
    limits: Limits,
    out: Decoded,
) -> None:
    """One reading set the careful way: each problem explained as a rejection."""
    if not isinstance(entry, dict):
        out.rejections.append(Rejection(
            Reason.WRONG_SHAPE, f"a reading set must be a JSON object, got {type(entry).__name__}",
            entry=index))
        return
    metrics: Mapping[str, object] = entry
    if "values" in entry:
        nested = entry["values"]
        if not isinstance(nested, dict):
            out.rejections.append(Rejection(
                Reason.WRONG_SHAPE, "values must be a JSON object of metrics", entry=index))
            return
        metrics = {**{k: v for k, v in entry.items() if k not in RESERVED_KEYS}, **nested}
    if len(metrics) > limits.max_metrics:  # cheap first; exact only when it may matter
        count = len(metrics.keys() - RESERVED_KEYS)
        if count > limits.max_metrics:
            out.rejections.append(Rejection(
                Reason.TOO_MANY_METRICS,
                f"{count} metrics in one reading set; the limit is {limits.max_metrics}",
                entry=index))
            return
    ts = parse_timestamp(entry.get("ts"), received_at, limits)
    if isinstance(ts, Rejection):
        out.rejections.append(Rejection(ts.reason, ts.detail, entry=index))
        return
    seq = entry.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        out.rejections.append(Rejection(
            Reason.BAD_VALUE_TYPE, f"seq must be an integer, got {shown(seq)}", entry=index))
    specs = kind.metric_index if kind is not None else _NO_METRICS
    readings = out.readings
    for name, raw in metrics.items():
        if name in RESERVED_KEYS:
            continue
        spec = specs.get(name)
        # Catalogue names are valid by construction; only unknown names need the pattern.
        if spec is None and not METRIC_NAME_PATTERN.fullmatch(name):
            out.rejections.append(Rejection(
                Reason.BAD_METRIC_NAME,
                f"metric name {shown(name)} must be 1 to 64 of [a-z0-9_], starting with a letter",
                entry=index))
            continue
        checked = _metric_value(name, raw, spec)
        if isinstance(checked, Rejection):
            out.rejections.append(Rejection(checked.reason, checked.detail, index, name))
            continue
        if spec is None and kind is not None:
            out.unknown_metrics += 1
        readings.append(Reading(device_id, name, ts, checked))


def _entries(document: object, limits: Limits, out: Decoded) -> Iterable[tuple[int | None, object]]:
    if isinstance(document, list):
        if len(document) > limits.max_entries:
            out.rejections.append(Rejection(
                Reason.TOO_MANY_ENTRIES,
                f"{len(document)} entries in one message; the limit is {limits.max_entries}"))
            return ()
        return enumerate(document)
    return ((None, document),)


def decode_telemetry(
    device_id: str,
    document: object,
    kind: DeviceKind | None,
    received_at: datetime,
    limits: Limits,
) -> Decoded:
    """Decode a parsed telemetry document: one reading set or an array of them."""
    out = Decoded()
    window = plausible_window(received_at, limits)
    specs = kind.metric_index if kind is not None else _NO_METRICS
    entries = list(_entries(document, limits, out))
    at = 0
    while at < len(entries):
        at = _decode_plain_sets(device_id, entries, at, specs, received_at, limits, window,
                                out.readings)
        if at < len(entries):
            index, entry = entries[at]
            _decode_reading_set(device_id, entry, index, kind, received_at, limits, out)
            at += 1
    return out


def _decode_plain_sets(
    device_id: str,
    entries: list[tuple[int | None, object]],
    start: int,
    specs: Mapping[str, MetricSpec],
    received_at: datetime,
    limits: Limits,
    window: Window,
    readings: list[Reading],
) -> int:
    """Decode entries from `start` while they have the usual shape (a plausible `ts` or none,
    an integer `seq` or none, known numeric metrics with possible values); return the
    position of the first that does not, for the careful `_decode_reading_set` to explain
    or decode (booleans, unknown metrics, nested `values`, anything refused).

    The same readings `_decode_reading_set` would give, in the same order, in one loop: a
    day's upload is 96 entries a message.
    """
    earliest, latest = window.earliest, window.latest
    earliest_ms, latest_ms = window.earliest_ms, window.latest_ms
    max_keys = limits.max_metrics
    at_time = datetime.fromtimestamp
    make = tuple.__new__  # Reading(...) through its Python-level __new__ costs twice as much
    append = readings.append
    for at in range(start, len(entries)):
        entry = entries[at][1]
        if type(entry) is not dict or "values" in entry or len(entry) > max_keys:
            return at
        seq = entry.get("seq")
        if not (seq is None or type(seq) is int):
            return at
        raw_ts = entry.get("ts")
        ts: datetime | Rejection
        if raw_ts is None:
            ts = received_at
        elif type(raw_ts) is int and earliest_ms <= raw_ts <= latest_ms:
            # The common firmware case (epoch ms), checked against the precomputed window.
            ts = at_time(raw_ts / 1000, UTC)
            if not earliest <= ts <= latest:
                return at
        else:
            ts = parse_timestamp(raw_ts, received_at, limits)
            if isinstance(ts, Rejection):
                return at
        taken = len(readings)
        for name, raw in entry.items():
            if name in RESERVED_KEYS:
                continue
            spec = specs.get(name)
            raw_type = type(raw)
            if spec is None or spec.boolean or not (
                    raw_type is float or (raw_type is int and -_LARGEST_INT < raw < _LARGEST_INT)):
                del readings[taken:]
                return at
            value = float(raw)
            if not spec.minimum <= value <= spec.maximum:  # NaN fails this too
                del readings[taken:]
                return at
            append(make(Reading, (device_id, name, ts, value)))
    return len(entries)


def decode_events(
    device_id: str, document: object, received_at: datetime, limits: Limits
) -> Decoded:
    """Decode a parsed event document: one event object or an array of them."""
    out = Decoded()
    for index, entry in _entries(document, limits, out):
        if not isinstance(entry, dict):
            out.rejections.append(Rejection(
                Reason.WRONG_SHAPE, f"an event must be a JSON object, got {type(entry).__name__}",
                entry=index))
            continue
        ts = parse_timestamp(entry.get("ts"), received_at, limits)
        if isinstance(ts, Rejection):
            out.rejections.append(Rejection(ts.reason, ts.detail, entry=index))
            continue
        unstorable = json_problem(entry)
        if unstorable:
            out.rejections.append(Rejection(Reason.BAD_EVENT, f"event: {unstorable}", entry=index))
            continue
        try:
            event = Event.model_validate({k: v for k, v in entry.items() if k != "ts"})
        except ValidationError as exc:
            out.rejections.append(Rejection(
                Reason.BAD_EVENT, first_error(exc, "event"), entry=index))
            continue
        body = {**entry, "ts": ts.isoformat()}
        out.events.append(EventRecord(device_id, ts, event.type, event.severity, body))
    return out


def decode_status(payload: bytes, limits: Limits) -> Status | Rejection:
    """Decode a status payload: `online`, `offline`, or a JSON object with `state`."""
    bare = payload.strip().strip(b'"').lower()
    if bare in (b"online", b"offline"):
        return Status(state="online" if bare == b"online" else "offline")
    document = parse_json(payload, limits)
    if isinstance(document, Rejection):
        return Rejection(Reason.BAD_STATUS, f"status must be online, offline or an object: "
                         f"{document.detail}")
    if not isinstance(document, dict):
        return Rejection(Reason.BAD_STATUS, "status must be online, offline or a JSON object")
    unstorable = json_problem(document)
    if unstorable:
        return Rejection(Reason.BAD_STATUS, f"status: {unstorable}")
    try:
        return Status.model_validate(document)
    except ValidationError as exc:
        return Rejection(Reason.BAD_STATUS, first_error(exc, "status"))


def split_gateway(document: object) -> tuple[list[tuple[str, object]], list[Rejection]]:
    """Split a gateway document into (child device id, telemetry document) pairs."""
    if not isinstance(document, dict):
        return [], [Rejection(Reason.WRONG_SHAPE,
                              "a gateway payload must be an object keyed by child device id")]
    children: list[tuple[str, object]] = []
    rejections: list[Rejection] = []
    for child_id, child_document in document.items():
        if DEVICE_ID_PATTERN.fullmatch(child_id):
            children.append((child_id, child_document))
        else:
            rejections.append(Rejection(
                Reason.WRONG_SHAPE, f"child device id {shown(child_id)} is not a device id"))
    return children, rejections
