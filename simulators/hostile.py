"""Malformed and adversarial messages, for testing how the platform copes (pure).

Deliberately off-contract: each case breaks one rule of the contract and says which, so
a test can expect the matching dead-letter reason. Nothing here is retained, so a
hostile status never replaces a device's real one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from devices.catalogue import kind_named
from devices.contract import MAX_ENTRIES_PER_MESSAGE, MAX_PAYLOAD_BYTES
from devices.topics import Channel, topic


@dataclass(frozen=True, slots=True)
class Hostile:
    """One adversarial message: where it goes, what it carries, which rule it breaks."""

    topic: str
    payload: bytes
    case: str


@dataclass(frozen=True, slots=True)
class _Target:
    prefix: str
    device_id: str
    metric: str
    now: datetime


def _telemetry(t: _Target, body: object) -> tuple[str, bytes]:
    return topic(t.prefix, t.device_id, Channel.TELEMETRY), orjson.dumps(body)


def _raw(t: _Target, payload: bytes, channel: Channel = Channel.TELEMETRY) -> tuple[str, bytes]:
    return topic(t.prefix, t.device_id, channel), payload


CASES: dict[str, Callable[[_Target], tuple[str, bytes]]] = {
    "invalid_json": lambda t: _raw(t, b'{"ts": "2026-11-22T08:00', ),
    "not_utf8": lambda t: _raw(t, b'{"' + t.metric.encode() + b'": 1, "note": "\xff\xfe"}'),
    "wrong_shape": lambda t: _raw(t, b'"just a string"'),
    "bad_value_type": lambda t: _telemetry(t, {"ts": t.now.isoformat(), t.metric: "high"}),
    "out_of_range": lambda t: _telemetry(t, {"ts": t.now.isoformat(), t.metric: 1e15}),
    "non_finite": lambda t: _raw(t, b'{"' + t.metric.encode() + b'": NaN}'),
    "ts_in_future": lambda t: _telemetry(
        t, {"ts": (t.now + timedelta(days=1)).isoformat(), t.metric: 1}),
    "ts_epoch_seconds": lambda t: _telemetry(t, {"ts": int(t.now.timestamp()), t.metric: 1}),
    "ts_without_offset": lambda t: _telemetry(
        t, {"ts": t.now.replace(tzinfo=None).isoformat(), t.metric: 1}),
    "too_many_entries": lambda t: _telemetry(
        t, [{t.metric: 1}] * (MAX_ENTRIES_PER_MESSAGE + 1)),
    "too_large": lambda t: _telemetry(t, {"ts": t.now.isoformat(), t.metric: 1,
                                          "padding": "x" * MAX_PAYLOAD_BYTES}),
    "bad_metric_name": lambda t: _telemetry(t, {"Total M3'; DROP TABLE readings;--": 1}),
    "deep_nesting": lambda t: _raw(t, b"[" * 50_000 + b"]" * 50_000),
    "bad_event": lambda t: _raw(t, orjson.dumps({"type": "Robert'); DROP TABLE events;--"}),
                                Channel.EVENT),
    "bad_status": lambda t: _raw(t, b'{"state": "maybe"}', Channel.STATUS),
    "unknown_device": lambda t: (topic(t.prefix, "zz-not-registered", Channel.TELEMETRY),
                                 orjson.dumps({t.metric: 1})),
    "bad_topic": lambda t: (f"{t.prefix}/{t.device_id}/telemetry/extra",
                            orjson.dumps({t.metric: 1})),
    "gateway_for_foreign_device": lambda t: _raw(
        t, orjson.dumps({"zz-foreign-child": {t.metric: 1}}), Channel.GATEWAY_TELEMETRY),
    # Each of these once stopped ingest for good (issue 12).
    "ts_before_year_1": lambda t: _telemetry(t, {"ts": -62_135_596_800_001, t.metric: 1}),
    "boolean_for_a_number": lambda t: _telemetry(t, {"ts": t.now.isoformat(), t.metric: True}),
    "gateway_child_with_nul": lambda t: _raw(
        t, b'{"zz-\\u0000": {"' + t.metric.encode() + b'": 1}}', Channel.GATEWAY_TELEMETRY),
    "gateway_child_with_lone_surrogate": lambda t: _raw(
        t, b'{"zz-\\ud800": {"' + t.metric.encode() + b'": 1}}', Channel.GATEWAY_TELEMETRY),
    "event_with_nul": lambda t: _raw(
        t, b'{"type": "reboot", "detail": {"note": "a\\u0000b"}}', Channel.EVENT),
    "event_nested_deep": lambda t: _raw(
        t, b'{"type": "reboot", "detail": ' + b"[" * 200 + b"]" * 200 + b"}", Channel.EVENT),
    "status_with_nul": lambda t: _raw(
        t, b'{"state": "online", "fw": "\\u0000"}', Channel.STATUS),
}


class HostileGenerator:
    """Picks a case and a victim device at random, the same sequence for the same seed."""

    def __init__(self, prefix: str, devices: Sequence[tuple[str, str]], seed: int = 0,
                 cases: Sequence[str] | None = None) -> None:
        if not devices:
            raise ValueError("hostile mode needs at least one device to impersonate")
        unknown = sorted(set(cases or ()) - CASES.keys())
        if unknown:
            raise ValueError(f"unknown hostile case {unknown[0]!r} (known: {', '.join(CASES)})")
        self._prefix = prefix
        self._devices = list(devices)
        self._cases = list(cases or CASES)
        self._rng = random.Random(f"hostile/{seed}")

    def next(self, now: datetime) -> tuple[str, Hostile]:
        """(the device whose connection sends it, the message)."""
        device_id, kind = self._rng.choice(self._devices)
        case = self._rng.choice(self._cases)
        metric = kind_named(kind).metrics[0].name
        name, payload = CASES[case](_Target(self._prefix, device_id, metric, now))
        return device_id, Hostile(name, payload, case)
