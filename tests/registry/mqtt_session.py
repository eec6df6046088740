"""A blocking MQTT session for tests: connect, publish and subscribe, and say what the broker answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho

from ground.mqtt import ClientOptions, build_client, connect_properties
from ground.settings import MqttEndpoint

TIMEOUT_S = 5.0


@dataclass
class Session:
    """One connected client that records CONNACK, PUBACK reason codes and messages."""

    endpoint: MqttEndpoint
    client_id: str
    username: str | None = None
    password: str | None = None
    connack: str | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    acks: dict[int, str] = field(default_factory=dict)
    granted: dict[int, list[int]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    client: paho.Client | None = None

    def connect(self) -> Session:
        """Connect and wait for the broker's answer (see `connack`)."""
        options = ClientOptions(client_id=self.client_id, username=self.username,
                                password=self.password, persistent_session=False)
        client = build_client(self.endpoint, options)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.connect(self.endpoint.host, self.endpoint.port,
                       properties=connect_properties(self.endpoint, options))
        client.loop_start()
        self.client = client
        self._wait(lambda: self.connack is not None)
        return self

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _on_connect(self, client: paho.Client, userdata: object, flags: object,
                    reason: object, properties: object) -> None:
        self.connack = str(reason)
        if self.connack != "Success":
            client.disconnect()  # no reconnect loop against a refusal
        self._notify()

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason: object,
                    properties: object) -> None:
        self.acks[mid] = str(reason)
        self._notify()

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int,
                      reasons: list[paho.ReasonCode], properties: object) -> None:
        self.granted[mid] = [reason.value for reason in reasons]
        self._notify()

    def _on_message(self, client: paho.Client, userdata: object,
                    message: paho.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload)))
        self._notify()

    def _wait(self, done: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> str:
        """Publish at QoS 1 and return the PUBACK's reason ("Success", "Not authorized")."""
        assert self.client is not None
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        assert self._wait(lambda: mid in self.acks), f"no PUBACK for {topic}"
        return self.acks[mid]

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe at QoS 1 and return the granted QoS / reason codes."""
        assert self.client is not None
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        assert self._wait(lambda: mid in self.granted), f"no SUBACK for {topic}"
        return self.granted[mid]

    def wait_for(self, count: int, timeout_s: float = TIMEOUT_S) -> list[tuple[str, bytes]]:
        """The messages received, once there are `count` of them or the time is up."""
        self._wait(lambda: len(self.messages) >= count, timeout_s)
        return list(self.messages)

    def close(self) -> None:
        """Disconnect and stop the network loop."""
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
