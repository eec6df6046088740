"""What an ingest worker subscribes to, over MQTT v5 and over MQTT 3.1.1."""

from __future__ import annotations

from paho.mqtt.subscribeoptions import SubscribeOptions

from ground.mqtt import shared
from ground.settings import parse_mqtt_url
from ingest.mqtt import subscriptions


def test_over_mqtt_v5_data_is_shared_and_status_is_retained_once() -> None:
    endpoint = parse_mqtt_url("mqtt://broker")
    filters = subscriptions("sv", shared(endpoint, "ingest"), endpoint.mqtt_v5)
    assert [name for name, _ in filters] == [
        "$share/ingest/sv/+/telemetry", "$share/ingest/sv/+/event",
        "$share/ingest/sv/+/gateway/telemetry", "sv/+/status"]
    options = [option for _, option in filters if isinstance(option, SubscribeOptions)]
    assert [(option.QoS, option.retainHandling) for option in options] == [
        (1, 0), (1, 0), (1, 0), (1, 1)]


def test_over_mqtt_3_1_1_there_are_no_shared_subscriptions_nor_options() -> None:
    endpoint = parse_mqtt_url("mqtt://broker?protocol=3.1.1")
    assert shared(endpoint, "ingest") is None
    assert subscriptions("sv", shared(endpoint, "ingest"), endpoint.mqtt_v5) == [
        ("sv/+/telemetry", 1), ("sv/+/event", 1), ("sv/+/gateway/telemetry", 1),
        ("sv/+/status", 1)]
