"""The one place paho-mqtt clients are built: endpoint, credentials, TLS, session and Will.

Every process (ingest, simulators, broadcast, alerting) builds its clients here, so the
connection rules of the contract (persistent sessions, retained status, Last Will) are
written once.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ground.settings import MqttEndpoint

# How long the broker keeps a disconnected persistent session (MQTT v5), in seconds.
SESSION_EXPIRY_S = 14 * 24 * 3600
# The largest payload the broker configurations we ship accept (Mosquitto's
# `message_size_limit`; EMQX's default `max_packet_size` is the same 1 MiB). Ingest's own
# limit must stay below it, so that an oversized payload reaches ingest and is
# dead-lettered (`too_large`) instead of being dropped by the broker.
BROKER_MESSAGE_SIZE_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Will:
    """A Last Will: what the broker publishes for us if we vanish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class ClientOptions:
    """How a client connects."""

    client_id: str
    persistent_session: bool = True
    # MQTT v5 receive maximum: the broker sends at most this many unacknowledged QoS 1
    # messages, which bounds what a subscriber holds in memory (MQTT 3.1.1 has none).
    receive_maximum: int | None = None
    manual_ack: bool = False
    keepalive_s: int = 30
    will: Will | None = None
    username: str | None = None  # overrides the endpoint's (devices log in as themselves)
    password: str | None = None


def build_client(endpoint: MqttEndpoint, options: ClientOptions) -> paho.Client:
    """A configured, not yet connected client, speaking the endpoint's protocol."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        protocol=paho.MQTTv5 if endpoint.mqtt_v5 else paho.MQTTv311,
        clean_session=None if endpoint.mqtt_v5 else not options.persistent_session,
        manual_ack=options.manual_ack,
    )
    username = options.username or endpoint.username
    password = options.password if options.username else endpoint.password
    if username:
        client.username_pw_set(username, password)
    if endpoint.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    if options.will:
        client.will_set(options.will.topic, options.will.payload, options.will.qos,
                        options.will.retain)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def shared(endpoint: MqttEndpoint, share_group: str | None) -> str | None:
    """The share group to subscribe with, or None where the protocol has no shared
    subscriptions (MQTT 3.1.1): there one client per group takes every message."""
    return share_group if endpoint.mqtt_v5 else None


def connect_properties(endpoint: MqttEndpoint, options: ClientOptions) -> Properties | None:
    """The MQTT v5 CONNECT properties for these options (None for MQTT 3.1.1)."""
    if not endpoint.mqtt_v5:
        return None
    properties = Properties(PacketTypes.CONNECT)
    if options.persistent_session:
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
    if options.receive_maximum:
        properties.ReceiveMaximum = options.receive_maximum
    return properties


def connect_async(client: paho.Client, endpoint: MqttEndpoint, options: ClientOptions) -> None:
    """Start connecting (the network loop, started by the caller, completes it and reconnects)."""
    client.connect_async(
        endpoint.host,
        endpoint.port,
        keepalive=options.keepalive_s,
        clean_start=(not options.persistent_session if endpoint.mqtt_v5
                     else paho.MQTT_CLEAN_START_FIRST_ONLY),
        properties=connect_properties(endpoint, options),
    )
