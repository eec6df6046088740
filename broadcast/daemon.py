"""The delivery daemon: broadcasts and device commands over MQTT and the database (adapter).

Three threads: paho's network loop hands acks and statuses to an inbox (nothing blocking
in the callback); a listener waits for `NOTIFY village_broadcast`; one worker drains the
inbox, runs the engine in database transactions, and only then acknowledges the MQTT
messages it handled (manual ack), so a crash or a database outage loses no ack.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.reasoncodes import ReasonCode

from broadcast import store
from broadcast.command_engine import CommandEngine
from broadcast.engine import Engine
from broadcast.inbound import Ack, BadMessage, Presence, decode
from broadcast.metrics import BroadcastMetrics
from broadcast.settings import BroadcastSettings
from devices.topics import Channel, subscription, topic
from ground.mqtt import ClientOptions, build_client, connect_async, shared
from ground.settings import MqttEndpoint

log = logging.getLogger(__name__)

_RECEIVE_MAXIMUM = 10_000
_WAKE = "wake"


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime


class MqttPublisher:
    """Publishes commands QoS 1 on the speakers' cmd topics."""

    def __init__(self, client: paho.Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def publish(self, device_id: str, payload: bytes) -> None:
        """Queue one command (paho sends it, and resends it after a reconnect)."""
        self._client.publish(topic(self._prefix, device_id, Channel.COMMAND), payload, qos=1)


class DaemonHandle:
    """A running delivery daemon."""

    def __init__(self, config: BroadcastSettings, *, broker: MqttEndpoint, database_url: str,
                 prefix: str, metrics: BroadcastMetrics | None = None) -> None:
        self._broker = broker
        self._database_url = database_url
        self._share_group = config.share_group
        self._prefix = prefix
        self._sweep_s = config.sweep_interval_s
        self._batch = config.ack_batch
        self._inbox: queue.SimpleQueue[_Message | str] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.ready = threading.Event()  # connected, subscribed, and the first cycle ran
        self._subscribed = threading.Event()
        self._options = ClientOptions(
            client_id=config.client_id or f"broadcast-{socket.gethostname()}"[:64],
            receive_maximum=_RECEIVE_MAXIMUM, manual_ack=True)
        self._client = build_client(broker, self._options)
        self._client.max_inflight_messages_set(config.max_in_flight)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        publisher = MqttPublisher(self._client, self._prefix)
        retry = timedelta(seconds=config.retry_interval_s)
        self.engine = Engine(publisher, retry)
        self.commands = CommandEngine(publisher, retry)
        self.metrics = metrics or BroadcastMetrics()
        self.metrics.watch(self._inbox.qsize)
        self._threads = [
            threading.Thread(target=self._work, name="broadcast-worker", daemon=True),
            threading.Thread(target=self._listen, name="broadcast-listen", daemon=True),
        ]

    @property
    def client_id(self) -> str:
        """The daemon's MQTT client id (its persistent session)."""
        return self._options.client_id

    # ---- life cycle ----

    def start(self) -> DaemonHandle:
        """Connect and start the threads; returns at once (see `ready`)."""
        connect_async(self._client, self._broker, self._options)
        self._client.loop_start()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Finish the current batch, then disconnect (the broker keeps our session)."""
        self._stopping.set()
        self._inbox.put(_WAKE)
        for thread in self._threads:
            thread.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    # ---- paho callbacks (network thread: hand over, never block) ----

    def _on_connect(self, client: paho.Client, userdata: object, flags: object,
                    reason: ReasonCode, properties: object) -> None:
        if reason.is_failure:
            log.warning("broker refused the broadcast daemon: %s", reason)
            return
        client.subscribe([
            (subscription(self._prefix, Channel.COMMAND_ACK,
                          shared(self._broker, self._share_group)), 1),
            (subscription(self._prefix, Channel.STATUS), 1),
        ])

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int,
                      reasons: list[ReasonCode], properties: object) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error("broker refused a broadcast subscription: %s", reasons)
            return
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: object,
                    message: paho.MQTTMessage) -> None:
        self._inbox.put(_Message(message.topic, bytes(message.payload), message.mid, message.qos,
                                 datetime.now(UTC)))

    # ---- the worker ----

    def _work(self) -> None:
        next_cycle = 0.0
        conn: psycopg.Connection | None = None
        # Messages not yet committed: kept across a database error, acknowledged only after.
        pending: list[_Message] = []
        while not self._stopping.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._database_url, autocommit=True)
                messages, woken = self._drain(max(0.0, next_cycle - time.monotonic()))
                pending.extend(messages)
                self._handle(conn, pending)
                pending = []
                if woken or time.monotonic() >= next_cycle:
                    with self.metrics.pass_seconds.labels("cycle").time():
                        with conn.transaction():
                            self.engine.cycle(conn, datetime.now(UTC))
                            self.commands.cycle(conn, datetime.now(UTC))
                        self._committed()
                    next_cycle = time.monotonic() + self._sweep_s
                    if self._subscribed.is_set():
                        self.ready.set()
            except Exception:  # noqa: BLE001 - the daemon outlives any one bad pass
                log.exception("broadcast daemon: a pass failed; retrying in a second")
                self.engine.entered.clear()  # rolled back: none of it happened
                self.commands.entered.clear()
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
                self._stopping.wait(1.0)
        if conn is not None:
            conn.close()

    def _drain(self, wait_s: float) -> tuple[list[_Message], bool]:
        """What arrived, waiting at most `wait_s` for the first item."""
        messages: list[_Message] = []
        woken = False
        try:
            item = self._inbox.get(timeout=wait_s) if wait_s > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return messages, woken
        while True:
            if isinstance(item, _Message):
                messages.append(item)
            else:
                woken = True
            if len(messages) >= self._batch:
                break
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
        return messages, woken

    def _handle(self, conn: psycopg.Connection, messages: list[_Message]) -> None:
        """Apply a batch in one transaction, then acknowledge it to the broker."""
        if not messages:
            return
        started = time.perf_counter()
        acks: list[Ack] = []
        presence: list[Presence] = []
        now = datetime.now(UTC)
        with conn.transaction():
            for message in messages:
                decoded = decode(self._prefix, message.topic, message.payload,
                                 message.received_at)
                if isinstance(decoded, Ack):
                    acks.append(decoded)
                elif isinstance(decoded, Presence):
                    presence.append(decoded)
                elif isinstance(decoded, BadMessage):
                    store.dead_letter(conn, decoded.topic, decoded.device_id, decoded.reason,
                                      decoded.detail, decoded.payload)
            if presence:
                self.engine.on_presence(conn, presence, now)
                self.commands.on_presence(conn, presence, now)
            if acks:
                self.engine.on_acks(conn, acks, now)
                self.commands.on_acks(conn, acks, now)
        self._committed()
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
        self.metrics.messages.inc(len(messages))
        self.metrics.pass_seconds.labels("messages").observe(time.perf_counter() - started)

    def _committed(self) -> None:
        self.metrics.committed(self.engine.entered, self.commands.entered)
        self.engine.entered.clear()
        self.commands.entered.clear()

    # ---- the listener ----

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._database_url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {store.NOTIFY_CHANNEL}")
                    self._inbox.put(_WAKE)  # anything missed while not listening
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._inbox.put(_WAKE)
            except psycopg.Error:
                log.exception("broadcast daemon: lost the notification connection")
                self._stopping.wait(1.0)
