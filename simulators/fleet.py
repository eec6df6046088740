"""The MQTT side of the simulators: many device connections driven from one selector loop.

A thin adapter. Each device gets its own paho client built by `village.mqtt.build_client`
(client id = username = device id, persistent session, Last Will `offline`), but no thread
of its own: one loop thread selects over every client's socket and calls paho's
`loop_read`/`loop_write`/`loop_misc`, runs the pure models when they are due, and feeds
them the commands they receive. Other threads talk to the loop through `_call`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from devices.topics import Channel, topic
from simulators.build import ModelOptions, build_models
from simulators.clock import Clock, SystemClock
from simulators.commands import Behaviour
from simulators.device import SimDevice
from simulators.faults import NETWORK_FAULTS, FaultWindow, faults_of
from simulators.hostile import HostileGenerator
from simulators.model import DeviceModel
from simulators.payloads import Outgoing, status
from simulators.speaker import PlayTiming, SpeakerLog, SpeakerModel
from village.mqtt import ClientOptions, Will, build_client, connect_async
from village.settings import MqttEndpoint

T = TypeVar("T")

# MQTT v5 reason code 0x04: the broker publishes our Will, as if we had vanished.
_DISCONNECT_WITH_WILL = ReasonCode(PacketTypes.DISCONNECT, identifier=4)
_CONNECTS_PER_TURN = 100  # new connections opened per loop turn, so the loop keeps serving
_MISC_EVERY_S = 1.0
_RECONNECT_AFTER_S = 2.0


@dataclass
class _Device:
    model: DeviceModel
    client: paho.Client
    options: ClientOptions
    wanted_online: bool = True
    connected: bool = False
    ready: bool = False  # connected and subscribed to its cmd topic
    retry_at: float = 0.0
    connects: int = 0
    scheduled: datetime | None = None


@dataclass
class FleetCounters:
    """What a fleet has done so far."""

    published: int = 0
    acknowledged: int = 0  # PUBACKs received for our QoS 1 publishes
    commands: int = 0
    connects: int = 0
    connect_failures: int = 0


class SimulatedFleet:
    """Simulated devices, one MQTT connection each, driven by one thread.

    Use as a context manager (or `start()`/`stop()`). Devices whose behaviour is `offline`
    connect once (so the broker holds their session and queues their commands) and then
    drop off with their Last Will; `bring_online` reconnects them to the same session.
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        prefix: str,
        devices: Sequence[SimDevice],
        seed: int = 0,
        nb_iot_share: float = 0.3,
        behaviours: Mapping[str, Behaviour] | None = None,
        intervals_s: Mapping[str, float] | None = None,
        timing: PlayTiming | None = None,
        clock: Clock | None = None,
        stagger: bool = True,
        keepalive_s: int = 60,
        autonomous: bool = True,
        hostile: HostileGenerator | None = None,
        hostile_rate: float = 0.0,
    ) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.clock = clock or SystemClock()
        self.counters = FleetCounters()
        options = ModelOptions(
            start=self.clock.now(), seed=seed, behaviours=dict(behaviours or {}),
            intervals_s=dict(intervals_s or {}), timing=timing or PlayTiming(), stagger=stagger,
            nb_iot_share=nb_iot_share,
        )
        built = build_models(devices, options)
        self._models = built.by_id
        self._carrier = built.carrier
        self._devices: dict[str, _Device] = {
            model.device_id: self._new_device(model, keepalive_s) for model in built.connected}
        self._initially_offline = [d for d in self._devices
                                   if options.behaviour(d).name == "offline"]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._heap: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self._to_connect: list[str] = []
        self._transitions: list[tuple[datetime, int, bool, str]] = []  # (at, _, online, id)
        # Without autonomy the models never run on their own (a back-fill publishes instead).
        self._autonomous = autonomous
        self._hostile = hostile
        self._hostile_every_s = 1 / hostile_rate if hostile and hostile_rate > 0 else None
        self._next_hostile = time.monotonic()
        self.hostile_sent: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ---- life cycle (any thread) ----

    def __enter__(self) -> SimulatedFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 60.0) -> SimulatedFleet:
        """Connect every device, wait until each is subscribed, then take `offline` ones down."""
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._to_connect = list(self._devices)
        self._thread = threading.Thread(target=self._run, name="simulated-fleet", daemon=True)
        self._thread.start()
        everyone = list(self._devices)
        self.wait_ready(everyone, timeout_s)
        gone = self._initially_offline
        if gone:
            self._call(lambda: self._disconnect(gone))
            self.wait_until(lambda: all(not self._devices[d].connected for d in gone), timeout_s,
                            "offline devices to disconnect")
        return self

    def stop(self) -> None:
        """Disconnect every device with its Will (they read `offline`) and stop the loop."""
        if self._thread is None:
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(lambda: self._disconnect(list(self._devices)), timeout_s=30)
                self.wait_until(lambda: not any(d.connected for d in self._devices.values()),
                                10, "devices to disconnect")
        self._stopping.set()
        self._wake()
        self._thread.join(timeout=30)
        self._thread = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # ---- what tests and commands use (any thread) ----

    def take_offline(self, device_ids: Iterable[str]) -> None:
        """Drop devices off the network; the broker publishes their Will (`offline`)."""
        ids = self._known(device_ids)
        self._call(lambda: self._disconnect(ids))
        self.wait_until(lambda: all(not self._devices[d].connected for d in ids), 30,
                        "devices to go offline")

    def bring_online(self, device_ids: Iterable[str], timeout_s: float = 30.0) -> None:
        """Reconnect devices to their persistent sessions (queued commands then arrive)."""
        ids = self._known(device_ids)

        def wake_up() -> None:
            for device_id in ids:
                device = self._devices[device_id]
                device.wanted_online = True
                self._to_connect.append(device_id)

        self._call(wake_up)
        self.wait_ready(ids, timeout_s)

    def wait_ready(self, device_ids: Iterable[str], timeout_s: float = 30.0) -> None:
        """Block until these devices are connected and subscribed to their commands."""
        ids = self._known(device_ids)
        self.wait_until(lambda: all(self._devices[d].ready for d in ids), timeout_s,
                        "devices to connect and subscribe")

    def speaker_log(self, device_id: str) -> SpeakerLog:
        """A snapshot of what a simulated speaker did."""
        model = self._models[device_id]
        if not isinstance(model, SpeakerModel):
            raise TypeError(f"{device_id} is a {model.kind}, not a speaker")
        return self._call(model.log.copy)

    def with_model(self, device_id: str, action: Callable[[DeviceModel, datetime], T]) -> T:
        """Run `action(model, now)` on the loop thread (to start a fault, say) and return its result."""
        model = self._models[device_id]

        def run() -> T:
            result = action(model, self.clock.now())
            self._schedule(self._carrier.get(device_id, device_id))
            return result

        return self._call(run)

    def start_fault(self, device_ids: Iterable[str], fault: str,
                    duration_s: float | None = None, ramp_s: float | None = None) -> None:
        """Give devices a fault from now (for `duration_s`, or until `clear_fault`).

        `ramp_s` shortens how long a growing fault takes to reach full size (0: at once).
        `offline` takes them off the network (their Will says `offline`); `bring_online`
        ends it. Every other fault is acted out by the device's model.
        """
        ids = self._known(device_ids, carried_too=True)
        for device_id in ids:
            kind = self._models[device_id].kind
            if fault not in faults_of(kind):
                raise ValueError(f"{device_id}: a {kind} has no fault {fault!r}"
                                 f" (known: {', '.join(faults_of(kind))})")
        if fault in NETWORK_FAULTS:
            self.take_offline(ids)
            return

        def add() -> None:
            now = self.clock.now()
            end = now + timedelta(seconds=duration_s) if duration_s is not None else None
            for device_id in ids:
                self._models[device_id].faults.add(FaultWindow(fault, now, end, ramp_s))
                self._schedule(self._carrier.get(device_id, device_id))

        self._call(add)

    def clear_fault(self, device_ids: Iterable[str], fault: str) -> None:
        """End a fault now on these devices."""
        ids = self._known(device_ids, carried_too=True)
        if fault in NETWORK_FAULTS:
            self.bring_online(ids)
            return

        def clear() -> None:
            now = self.clock.now()
            for device_id in ids:
                self._models[device_id].faults.clear(fault, now)

        self._call(clear)

    def add_faults(self, pairs: Iterable[tuple[str, FaultWindow]]) -> None:
        """Give devices fault windows (from a scenario); `offline` ones are acted out on time."""
        pairs = list(pairs)
        self._known([device_id for device_id, _ in pairs], carried_too=True)
        for device_id, window in pairs:
            if window.name in NETWORK_FAULTS and device_id in self._carrier:
                raise ValueError(f"{device_id} rides on gateway {self._carrier[device_id]}:"
                                 " only the gateway can go offline")

        def add() -> None:
            for device_id, window in pairs:
                self._models[device_id].faults.add(window)
                if window.name in NETWORK_FAULTS:
                    heapq.heappush(self._transitions,
                                   (window.start, next(self._order), False, device_id))
                    if window.end is not None:
                        heapq.heappush(self._transitions,
                                       (window.end, next(self._order), True, device_id))
                if self._devices.get(self._carrier.get(device_id, device_id)):
                    self._schedule(self._carrier.get(device_id, device_id))

        self._call(add)

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish messages through their devices' connections (a carried child's: its gateway's)."""

        def send() -> None:
            for message in messages:
                owner = self._carrier.get(message.device_id, message.device_id)
                self._publish(self._devices[owner], [message])

        self._call(send)

    @property
    def outstanding(self) -> int:
        """Messages published and not yet acknowledged by the broker."""
        return self.counters.published - self.counters.acknowledged

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every message published so far has been acknowledged by the broker."""
        self.wait_until(lambda: self.counters.acknowledged >= self.counters.published, timeout_s,
                        "PUBACKs")

    @property
    def connections(self) -> int:
        """How many MQTT connections the fleet holds when every device is up."""
        return len(self._devices)

    def online(self) -> list[str]:
        """The devices connected right now."""
        return [d for d, device in self._devices.items() if device.connected]

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Block until `condition()` holds; TimeoutError names what was awaited."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self._error is not None:
                raise RuntimeError("the fleet loop failed") from self._error
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s} s for {what}")
            time.sleep(0.02)

    # ---- the loop thread ----

    def _call(self, function: Callable[[], T], timeout_s: float = 60.0) -> T:
        if self._thread is None or threading.current_thread() is self._thread:
            return function()
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)

        self._calls.put(run)
        self._wake()
        return future.result(timeout=timeout_s)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _known(self, device_ids: Iterable[str], carried_too: bool = False) -> list[str]:
        ids = list(device_ids)
        unknown = [d for d in ids if d not in (self._models if carried_too else self._devices)]
        if unknown:
            carried = [d for d in unknown if d in self._carrier]
            if carried:
                raise KeyError(f"{carried[0]} rides on gateway {self._carrier[carried[0]]}"
                               " and has no connection of its own")
            raise KeyError(f"not in this fleet: {', '.join(unknown[:5])}")
        return ids

    def _new_device(self, model: DeviceModel, keepalive_s: int) -> _Device:
        device_id = model.device_id
        will = Will(topic(self.prefix, device_id, Channel.STATUS), b"offline")
        options = ClientOptions(client_id=device_id, username=device_id, will=will,
                                keepalive_s=keepalive_s)
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
        return _Device(model, client, options)

    def _run(self) -> None:
        try:
            next_misc = time.monotonic()
            while not self._stopping.is_set():
                self._connect_some()
                self._run_transitions()
                if self._autonomous:
                    self._run_due_models()
                self._send_hostile()
                for key, mask in self._selector.select(self._timeout()):
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
            self._error = exc
            raise

    def _timeout(self) -> float:
        if self._to_connect:
            return 0.0
        now = self.clock.now()
        waits = [_MISC_EVERY_S]
        if self._heap and self._autonomous:
            waits.append((self._heap[0][0] - now).total_seconds())
        if self._transitions:
            waits.append((self._transitions[0][0] - now).total_seconds())
        if self._hostile_every_s is not None:
            waits.append(self._next_hostile - time.monotonic())
        return max(min(waits), 0.0)

    def _run_transitions(self) -> None:
        now = self.clock.now()
        while self._transitions and self._transitions[0][0] <= now:
            _, _, online, device_id = heapq.heappop(self._transitions)
            device = self._devices[device_id]
            if online:
                device.wanted_online = True
                self._to_connect.append(device_id)
            else:
                self._disconnect([device_id])

    def _send_hostile(self) -> None:
        if self._hostile is None or self._hostile_every_s is None:
            return
        now = self.clock.now()
        if time.monotonic() - self._next_hostile > 1.0:
            self._next_hostile = time.monotonic()  # a stalled loop does not make up in a burst
        while self._next_hostile <= time.monotonic():
            self._next_hostile += self._hostile_every_s
            device_id, message = self._hostile.next(now)
            device = self._devices.get(self._carrier.get(device_id, device_id))
            if device is None or not device.connected:
                continue
            device.client.publish(message.topic, message.payload, qos=1)
            self.counters.published += 1
            self.hostile_sent[message.case] = self.hostile_sent.get(message.case, 0) + 1

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
        batch, self._to_connect = (self._to_connect[:_CONNECTS_PER_TURN],
                                   self._to_connect[_CONNECTS_PER_TURN:])
        for device_id in batch:
            self._connect(self._devices[device_id])

    def _connect(self, device: _Device) -> None:
        if device.connected or not device.wanted_online:
            return
        connect_async(device.client, self.endpoint, device.options)
        try:
            device.client.reconnect()
        except OSError:
            self.counters.connect_failures += 1
            device.retry_at = time.monotonic() + _RECONNECT_AFTER_S

    def _misc(self) -> None:
        now = time.monotonic()
        for device in self._devices.values():
            if device.client.socket() is not None:
                device.client.loop_misc()
            elif device.wanted_online and not device.connected and 0 < device.retry_at <= now:
                device.retry_at = 0.0
                self._connect(device)

    def _disconnect(self, device_ids: Sequence[str]) -> None:
        for device_id in device_ids:
            device = self._devices[device_id]
            device.wanted_online = False
            device.ready = False
            if device.client.socket() is not None:
                device.client.disconnect(reasoncode=_DISCONNECT_WITH_WILL)

    def _schedule(self, device_id: str) -> None:
        device = self._devices[device_id]
        due = device.model.next_due()
        if due != device.scheduled:
            device.scheduled = due
            heapq.heappush(self._heap, (due, next(self._order), device_id))

    def _run_due_models(self) -> None:
        now = self.clock.now()
        while self._heap and self._heap[0][0] <= now:
            due, _, device_id = heapq.heappop(self._heap)
            device = self._devices[device_id]
            if due != device.scheduled:
                continue  # superseded by a later schedule
            device.scheduled = None
            if not device.connected:
                continue  # a device off the network does nothing; rescheduled on connect
            self._publish(device, device.model.poll(now))
            self._schedule(device_id)

    def _publish(self, device: _Device, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            device.client.publish(message.topic(self.prefix), message.payload, qos=1,
                                  retain=message.retain)
            self.counters.published += 1

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
        device = self._devices[device_id]
        if reason.is_failure:
            self.counters.connect_failures += 1
            device.retry_at = time.monotonic() + _RECONNECT_AFTER_S
            return
        self.counters.connects += 1
        device.connected = True
        device.connects += 1
        if device.connects > 1:
            device.model.resume(self.clock.now())
        self._publish(device, [status(device_id, "online")])
        client.subscribe(topic(self.prefix, device_id, Channel.COMMAND), qos=1)
        self._schedule(device_id)

    def _on_subscribe(self, client: paho.Client, device_id: str, mid: int, reasons: Any,
                      properties: Any) -> None:
        self._devices[device_id].ready = True

    def _on_message(self, client: paho.Client, device_id: str, message: paho.MQTTMessage) -> None:
        device = self._devices[device_id]
        self.counters.commands += 1
        self._publish(device, device.model.handle_command(bytes(message.payload), self.clock.now()))
        self._schedule(device_id)

    def _on_publish(self, client: paho.Client, device_id: str, mid: int, reason: Any,
                    properties: Any) -> None:
        self.counters.acknowledged += 1

    def _on_disconnect(self, client: paho.Client, device_id: str, flags: Any, reason: Any,
                       properties: Any) -> None:
        device = self._devices[device_id]
        device.connected = False
        device.ready = False
        if device.wanted_online:
            device.retry_at = time.monotonic() + _RECONNECT_AFTER_S
