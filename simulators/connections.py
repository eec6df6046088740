"""Many device MQTT connections driven from one selector loop thread (the MQTT adapter).

Each device gets its own paho client built by `ground.mqtt.build_client` (client id =
username = device id, persistent session, Last Will `offline` retained on its status
topic), but no thread of its own: one thread selects over every client's socket and
calls paho's `loop_read`/`loop_write`/`loop_misc`. What to do between network events
(run the models, say) is the owner's `tick`. Other threads talk to the loop via `call`.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from devices.topics import Channel, topic
from ground.mqtt import ClientOptions, Will, build_client, connect_async
from ground.settings import MqttEndpoint
from simulators.payloads import Outgoing, status

T = TypeVar("T")

# MQTT v5 reason code 0x04: the broker publishes our Will, as if we had vanished.
_DISCONNECT_WITH_WILL = ReasonCode(PacketTypes.DISCONNECT, identifier=4)
_CONNECTS_PER_TURN = 100  # new connections opened per loop turn, so the loop keeps serving
_MISC_EVERY_S = 1.0
_RECONNECT_AFTER_S = 2.0


@dataclass
class FleetCounters:
    """What a fleet has done so far."""

    published: int = 0
    acknowledged: int = 0  # PUBACKs received for our QoS 1 publishes
    commands: int = 0
    connects: int = 0
    connect_failures: int = 0
    # How late the loop ran models after they were due, seconds (the last 10,000 runs).
    lag_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))


@dataclass
class Connection:
    """One device's MQTT connection and what the loop knows of it."""

    device_id: str
    client: paho.Client
    options: ClientOptions
    wanted_online: bool = True
    connected: bool = False
    ready: bool = False  # connected and subscribed to its cmd topic
    retry_at: float = 0.0
    connects: int = 0


class Hooks(Protocol):
    """What the loop's owner does on the loop thread."""

    def tick(self) -> float:
        """Do what is due; return how long the loop may sleep (seconds) before the next tick."""
        ...

    def connected(self, connection: Connection) -> None:
        """A connection has just been accepted (its `online` status is on its way)."""
        ...

    def command(self, connection: Connection, payload: bytes) -> None:
        """A command arrived on the connection's cmd topic."""
        ...


class ConnectionLoop:
    """The connections of a fleet and the one thread that drives them."""

    def __init__(self, endpoint: MqttEndpoint, prefix: str, hooks: Hooks,
                 counters: FleetCounters) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.hooks = hooks
        self.counters = counters
        self.connections: dict[str, Connection] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._to_connect: deque[str] = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def add(self, device_id: str, keepalive_s: int, password: str | None = None) -> Connection:
        """Prepare a device's connection (opened by `start` or `connect`)."""
        will = Will(topic(self.prefix, device_id, Channel.STATUS), b"offline")
        options = ClientOptions(client_id=device_id, username=device_id, password=password,
                                will=will, keepalive_s=keepalive_s)
        client = build_client(self.endpoint, options)
        client.user_data_set(device_id)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        connection = Connection(device_id, client, options)
        self.connections[device_id] = connection
        return connection

    # ---- any thread ----

    def start(self) -> None:
        """Start the loop thread; it opens every connection."""
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._to_connect.extend(self.connections)
        self._thread = threading.Thread(target=self._run, name="simulated-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Disconnect every device with its Will (they read `offline`) and end the thread."""
        if self._thread is None:
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(lambda: self.disconnect(list(self.connections)), timeout_s=30)
                self.wait_until(lambda: not any(c.connected for c in self.connections.values()),
                                10, "devices to disconnect")
        self._stopping.set()
        self.wake()
        self._thread.join(timeout=30)
        self._thread = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def call(self, function: Callable[[], T], timeout_s: float = 60.0) -> T:
        """Run `function` on the loop thread and return its result (at once if not running)."""
        if self._thread is None or threading.current_thread() is self._thread:
            return function()
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)

        self._calls.put(run)
        self.wake()
        return future.result(timeout=timeout_s)

    def wake(self) -> None:
        """Interrupt the loop's wait (new work from another thread)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Block until `condition()` holds; TimeoutError names what was awaited."""
        deadline = time.monotonic() + timeout_s
        pause = 0.01
        while not condition():
            if self.error is not None:
                raise RuntimeError("the fleet loop failed") from self.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s} s for {what}")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.2)  # a waiter must not starve the loop of the GIL

    def wait_ready(self, device_ids: Iterable[str], timeout_s: float) -> None:
        """Block until these devices are connected and subscribed to their commands."""
        pending = list(device_ids)

        def ready() -> bool:
            pending[:] = [d for d in pending if not self.connections[d].ready]
            return not pending

        self.wait_until(ready, timeout_s, "devices to connect and subscribe")

    # ---- the loop thread ----

    def connect(self, device_ids: Iterable[str]) -> None:
        """Open (or reopen, to the same persistent session) these devices' connections."""
        for device_id in device_ids:
            self.connections[device_id].wanted_online = True
            self._to_connect.append(device_id)

    def disconnect(self, device_ids: Iterable[str]) -> None:
        """Drop these devices off the network; the broker publishes their Will."""
        for device_id in device_ids:
            connection = self.connections[device_id]
            connection.wanted_online = False
            connection.ready = False
            sock = connection.client.socket()
            if sock is None:
                continue
            if self.endpoint.mqtt_v5:
                connection.client.disconnect(reasoncode=_DISCONNECT_WITH_WILL)
            elif isinstance(sock, socket.socket):
                # MQTT 3.1.1 has no "disconnect with Will": any DISCONNECT discards it, so
                # the connection is cut as a dead battery would (paho then sees it closed).
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def publish(self, connection: Connection, messages: Iterable[Outgoing]) -> None:
        """Publish at QoS 1 through a connection."""
        for message in messages:
            connection.client.publish(message.topic(self.prefix), message.payload, qos=1,
                                      retain=message.retain)
            self.counters.published += 1

    def _run(self) -> None:
        try:
            next_misc = time.monotonic()
            while not self._stopping.is_set():
                self._connect_some()
                wait = 0.0 if self._to_connect else min(self.hooks.tick(), _MISC_EVERY_S)
                for key, mask in self._selector.select(max(wait, 0.0)):
                    if key.data is None:
                        self._drain_calls()
                        continue
                    client: paho.Client = key.data
                    if mask & selectors.EVENT_READ:
                        client.loop_read()
                    if mask & selectors.EVENT_WRITE and client.socket() is not None:
                        client.loop_write()
                self._drain_calls()
                if time.monotonic() >= next_misc:
                    next_misc = time.monotonic() + _MISC_EVERY_S
                    self._misc()
        except BaseException as exc:  # surfaced to callers by wait_until
            self.error = exc
            raise

    def _drain_calls(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            call()

    def _connect_some(self) -> None:
        for _ in range(min(_CONNECTS_PER_TURN, len(self._to_connect))):
            self._open(self.connections[self._to_connect.popleft()])

    def _open(self, connection: Connection) -> None:
        if connection.connected or not connection.wanted_online:
            return
        connect_async(connection.client, self.endpoint, connection.options)
        try:
            connection.client.reconnect()
        except OSError:
            self.counters.connect_failures += 1
            connection.retry_at = time.monotonic() + _RECONNECT_AFTER_S

    def _misc(self) -> None:
        now = time.monotonic()
        for connection in self.connections.values():
            if connection.client.socket() is not None:
                connection.client.loop_misc()
            elif connection.wanted_online and not connection.connected \
                    and 0 < connection.retry_at <= now:
                connection.retry_at = 0.0
                self._open(connection)

    # ---- paho callbacks (on the loop thread) ----

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._selector.register(sock, selectors.EVENT_READ, client)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.modify(sock, selectors.EVENT_READ, client)

    def _on_connect(self, client: paho.Client, device_id: str, flags: Any, reason: Any,
                    properties: Any) -> None:
        connection = self.connections[device_id]
        if reason.is_failure:
            self.counters.connect_failures += 1
            connection.retry_at = time.monotonic() + _RECONNECT_AFTER_S
            return
        self.counters.connects += 1
        connection.connected = True
        connection.connects += 1
        self.publish(connection, [status(device_id, "online")])
        client.subscribe(topic(self.prefix, device_id, Channel.COMMAND), qos=1)
        self.hooks.connected(connection)

    def _on_subscribe(self, client: paho.Client, device_id: str, mid: int, reasons: Any,
                      properties: Any) -> None:
        self.connections[device_id].ready = True

    def _on_message(self, client: paho.Client, device_id: str, message: paho.MQTTMessage) -> None:
        self.counters.commands += 1
        self.hooks.command(self.connections[device_id], bytes(message.payload))

    def _on_publish(self, client: paho.Client, device_id: str, mid: int, reason: Any,
                    properties: Any) -> None:
        self.counters.acknowledged += 1

    def _on_disconnect(self, client: paho.Client, device_id: str, flags: Any, reason: Any,
                       properties: Any) -> None:
        connection = self.connections[device_id]
        connection.connected = False
        connection.ready = False
        if connection.wanted_online:
            connection.retry_at = time.monotonic() + _RECONNECT_AFTER_S
