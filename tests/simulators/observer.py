"""A platform-side MQTT client for tests: sends commands, records what devices publish."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

from ground.mqtt import ClientOptions, build_client, connect_async
from ground.settings import MqttEndpoint, parse_mqtt_url


class Observer:
    """Subscribes to topic filters and keeps every message received, in order."""

    def __init__(self, url: str, *filters: str) -> None:
        self.endpoint: MqttEndpoint = parse_mqtt_url(url)
        self.options = ClientOptions(client_id=f"observer-{uuid.uuid4().hex[:8]}",
                                     persistent_session=False)
        self.filters = filters
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = build_client(self.endpoint, self.options)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    def __enter__(self) -> Observer:
        connect_async(self.client, self.endpoint, self.options)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("observer did not subscribe")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe([(f, 1) for f in self.filters])

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def received(self, predicate: Callable[[str, bytes], bool] = lambda t, p: True
                 ) -> list[tuple[str, bytes]]:
        """The messages so far that satisfy `predicate(topic, payload)`."""
        with self._lock:
            return [(t, p) for t, p, _ in self.messages if predicate(t, p)]

    def wait_for(self, predicate: Callable[[list[tuple[str, bytes]]], bool],
                 timeout_s: float = 15.0) -> list[tuple[str, bytes]]:
        """Wait until `predicate(all messages)` holds; return the messages."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.received()
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met after {timeout_s} s; {len(seen)} messages")
            time.sleep(0.02)


def statuses(messages: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """The last status each device published, by device id (a prefix without slashes)."""
    return {t.split("/")[1]: p for t, p in messages if t.endswith("/status")}
