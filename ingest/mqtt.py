"""The ingest worker's MQTT client: subscribes, hands messages off, acknowledges on request.

The network callback only appends to the hand-off. Acknowledgement is manual: the writer
calls `ack` after its transaction commits, so an unacknowledged message is redelivered by
the broker (persistent session) if the worker dies. The MQTT v5 receive maximum bounds how
many unacknowledged messages the broker sends us, which is what bounds memory; over MQTT
3.1.1, which has none, the network thread waits while that many are held (handed off and
not yet settled by `ack`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from devices.topics import Channel, subscription
from ground.mqtt import ClientOptions, build_client, connect_async, shared
from ground.settings import MqttEndpoint
from ingest.handoff import HandOff, Message

# Retained messages are not sent to shared subscriptions (MQTT v5), so status is taken by
# every worker on a plain subscription: it is low volume and storing it is idempotent.
SHARED_CHANNELS = (Channel.TELEMETRY, Channel.EVENT, Channel.GATEWAY_TELEMETRY)


def subscriptions(prefix: str, share_group: str | None,
                  mqtt_v5: bool = True,
                  ) -> list[tuple[str, SubscribeOptions]] | list[tuple[str, int]]:
    """The filters an ingest worker subscribes to, with their options (a QoS for 3.1.1)."""
    filters = [subscription(prefix, channel, share_group) for channel in SHARED_CHANNELS]
    status = subscription(prefix, Channel.STATUS)
    if not mqtt_v5:
        return [(name, 1) for name in [*filters, status]]
    # Retain handling 1: retained statuses come when the subscription is new, not again on
    # every reconnect of a persistent session.
    return [*[(name, SubscribeOptions(qos=1)) for name in filters],
            (status, SubscribeOptions(qos=1, retainHandling=1))]


class Subscriber:
    """One MQTT connection feeding a hand-off."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        prefix: str,
        share_group: str | None,
        client_id: str,
        receive_maximum: int,
        handoff: HandOff,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._endpoint = endpoint
        self._options = ClientOptions(
            client_id=client_id, persistent_session=True, receive_maximum=receive_maximum,
            manual_ack=True,
        )
        self._subscriptions = subscriptions(prefix, shared(endpoint, share_group),
                                            endpoint.mqtt_v5)
        # Without a receive maximum (MQTT 3.1.1) the broker sends as fast as it can; holding
        # the network thread once this many are held (in the hand-off or being committed)
        # leaves the rest at the broker.
        self._hold_at = None if endpoint.mqtt_v5 else receive_maximum
        self._handoff = handoff
        self._log = log
        self._lock = threading.Lock()
        self._generation = 0
        self._receiving = True
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connects = 0
        self.received = 0  # messages handed off, over every connection
        self.settled = 0  # of those, messages passed to `ack` (acknowledged or not needing it)
        self._client = build_client(endpoint, self._options)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background; the network thread reconnects by itself."""
        connect_async(self._client, self._endpoint, self._options)
        self._client.loop_start()

    def pause(self) -> None:
        """Stop handing messages off; what arrives stays unacknowledged for the next session."""
        self._receiving = False

    def stop(self) -> None:
        """Disconnect cleanly (the session and its queued messages stay at the broker)."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, messages: Iterable[Message]) -> int:
        """Acknowledge committed messages that came on the current connection."""
        acked = 0
        with self._lock:
            for message in messages:
                self.settled += 1
                # A packet id from an earlier connection may since name another message;
                # the broker redelivers those, and storing them again is idempotent.
                if message.qos > 0 and message.generation == self._generation:
                    self._client.ack(message.mid, message.qos)
                    acked += 1
        return acked

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Any) -> None:
        if reason_code.is_failure:
            self._log(f"broker refused the connection: {reason_code}")
            return
        with self._lock:
            self._generation += 1
            self.connects += 1
        self.connected.set()
        client.subscribe(self._subscriptions)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], properties: Any) -> None:
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            self._log(f"broker refused a subscription: {', '.join(failed)}")
        else:
            self._log("subscribed: " + ", ".join(name for name, _ in self._subscriptions))
            self.subscribed.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if self._receiving:
            self._log(f"disconnected from the broker ({reason_code}); reconnecting")

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        while self._hold_at is not None and self.received - self.settled >= self._hold_at \
                and self._receiving:
            time.sleep(0.01)
        if not self._receiving:
            return
        handed_off = self._handoff.put(Message(
            msg._topic.decode("utf-8", "replace"), bytes(msg.payload), msg.mid, msg.qos, msg.retain,
            datetime.now(UTC), self._generation,
        ))
        self.received += handed_off  # a QoS 0 message refused at the cap is counted there
