"""Size limits agree: what ingest finds too large reaches it and is dead-lettered; what the
broker finds too large is refused to the device (MQTT v5), never silently taken."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from devices.topics import Channel, topic
from ground.local import NO_LOSS_BROKER_SETTINGS, MosquittoServer
from ground.mqtt import BROKER_MESSAGE_SIZE_LIMIT
from ingest.settings import IngestSettings
from tests.ingest.conftest import (
    Publisher,
    ingest_settings,
    register,
    rows,
    running_worker,
    wait_until,
)


def test_ingest_cannot_be_set_to_take_more_than_the_broker_lets_through() -> None:
    assert IngestSettings().max_payload_bytes < BROKER_MESSAGE_SIZE_LIMIT
    assert f"message_size_limit {BROKER_MESSAGE_SIZE_LIMIT}" in NO_LOSS_BROKER_SETTINGS
    with pytest.raises(ValidationError, match="max_payload_bytes"):
        IngestSettings(max_payload_bytes=4 * 1024 * 1024)
    with pytest.raises(ValidationError, match="max_payload_bytes"):
        IngestSettings(max_payload_bytes=BROKER_MESSAGE_SIZE_LIMIT)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _varint(len(body)) + body


def _string(text: str) -> bytes:
    return len(text.encode()).to_bytes(2, "big") + text.encode()


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    kind = sock.recv(1)[0]
    length, shift = 0, 0
    while True:
        digit = sock.recv(1)[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return kind, body


def publish_v5(port: int, name: str, payload: bytes) -> int:
    """Publish QoS 1 over MQTT v5 and return the reason code of the broker's PUBACK.

    A raw client: paho-mqtt takes the code Mosquitto 2.0 sends here (0x95, packet too
    large) for a protocol error, and reconnects and resends for ever."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_packet(0x10, _string("MQTT") + bytes([5, 0x02, 0, 30, 0])
                             + _string("big-publisher")))
        assert _read_packet(sock)[0] == 0x20  # CONNACK
        sock.sendall(_packet(0x32, _string(name) + (1).to_bytes(2, "big") + b"\x00"
                             + payload))
        kind, body = _read_packet(sock)
        assert kind == 0x40 and body[:2] == (1).to_bytes(2, "big")  # PUBACK of packet 1
        return body[2] if len(body) > 2 else 0


def test_too_large_for_ingest_is_dead_lettered_too_large_for_the_broker_is_refused_to_the_device(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [("wm-1", "water_meter")])
    meter = topic(topic_prefix, "wm-1", Channel.TELEMETRY)
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix,
                               max_payload_bytes=BROKER_MESSAGE_SIZE_LIMIT - 1)
    just_under_the_broker = b'{"total_m3": 1, "pad": "' + b"x" * BROKER_MESSAGE_SIZE_LIMIT
    just_under_the_broker = just_under_the_broker[:BROKER_MESSAGE_SIZE_LIMIT - 2] + b'"}'
    with running_worker(settings) as worker:
        # Over the broker's limit: MQTT v5 tells the device, and nothing reaches ingest.
        code = publish_v5(mosquitto.port, meter, b"x" * (BROKER_MESSAGE_SIZE_LIMIT + 1))
        assert code >= 0x80, f"the broker took it (reason code {code:#x})"
        pub = Publisher(mosquitto.url)
        pub.publish(meter, just_under_the_broker)
        pub.publish(meter, {"total_m3": 2})
        pub.close()
        wait_until(lambda: worker.stats.messages == 2, what="both messages handled")
    assert rows(database_url, "SELECT reason, payload_bytes FROM dead_letters") == [
        ("too_large", BROKER_MESSAGE_SIZE_LIMIT)]
    assert rows(database_url, "SELECT value FROM readings") == [(2.0,)]
