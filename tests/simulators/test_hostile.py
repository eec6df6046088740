"""Hostile messages each break a rule the platform's decoder catches."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devices.catalogue import kind_named
from devices.decode import (
    Limits,
    Rejection,
    decode_events,
    decode_status,
    decode_telemetry,
    parse_json,
)
from devices.topics import Channel, TopicError, parse_topic
from simulators.hostile import CASES, HostileGenerator

NOW = datetime.fromisoformat("2026-11-22T08:00:00+08:00")
PREFIX = "sv"
# Rejected only with the registry's help (ingest's admission), not by the decoder alone.
NEEDS_REGISTRY = {"unknown_device", "gateway_for_foreign_device"}


def rejected(name: str, payload: bytes) -> bool:
    try:
        parsed = parse_topic(PREFIX, name)
    except TopicError:
        return True
    if parsed.channel is Channel.STATUS:
        return isinstance(decode_status(payload, Limits()), Rejection)
    document = parse_json(payload, Limits())
    if isinstance(document, Rejection):
        return True
    if parsed.channel is Channel.EVENT:
        return bool(decode_events(parsed.device_id, document, NOW, Limits()).rejections)
    return bool(decode_telemetry(parsed.device_id, document, kind_named("water_meter"), NOW,
                                 Limits()).rejections)


@pytest.mark.parametrize("case", sorted(set(CASES) - NEEDS_REGISTRY))
def test_every_hostile_case_is_rejected_by_the_decoder(case: str) -> None:
    generator = HostileGenerator(PREFIX, [("wm-0001", "water_meter")], cases=[case])
    device_id, message = generator.next(NOW)
    assert device_id == "wm-0001" and message.case == case
    assert rejected(message.topic, message.payload)


def test_the_registry_cases_name_devices_nobody_registered() -> None:
    for case in NEEDS_REGISTRY:
        _, message = HostileGenerator(PREFIX, [("wm-0001", "water_meter")], cases=[case]).next(NOW)
        assert b"zz-" in message.payload or "zz-" in message.topic


def test_the_same_seed_gives_the_same_attack() -> None:
    devices = [("wm-0001", "water_meter"), ("cam-0001", "camera")]

    def run(seed: int) -> list[tuple[str, str]]:
        generator = HostileGenerator(PREFIX, devices, seed)
        return [(d, m.case) for d, m in (generator.next(NOW + timedelta(seconds=i))
                                         for i in range(50))]

    assert run(1) == run(1) != run(2)


def test_an_unknown_case_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown hostile case 'nope'"):
        HostileGenerator(PREFIX, [("wm-0001", "water_meter")], cases=["nope"])
