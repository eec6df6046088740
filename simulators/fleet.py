"""A fleet of simulated devices on a real broker: the pure models run by the connection loop.

Composition: `build_models` makes the models, `ConnectionLoop` holds one MQTT connection
per device (gateways carry their children's), and this module runs each model when it is
due, feeds it its commands, acts out network faults on time, and mixes in hostile
messages. Tests and `village simulate` use `SimulatedFleet`; see docs/simulators.md.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from ground.settings import MqttEndpoint
from simulators.build import ModelOptions, build_models
from simulators.clock import Clock, SystemClock
from simulators.commands import Behaviour
from simulators.connections import Connection, ConnectionLoop, FleetCounters
from simulators.device import SimDevice
from simulators.faults import NETWORK_FAULTS, FaultWindow, faults_of
from simulators.hostile import HostileGenerator
from simulators.model import DeviceModel
from simulators.payloads import Outgoing
from simulators.speaker import PlayTiming, SpeakerLog, SpeakerModel

T = TypeVar("T")

__all__ = ["FleetCounters", "SimulatedFleet"]

# Models run for at most this long per loop turn, so PUBACKs and commands keep flowing
# even when the fleet has fallen behind.
_MODEL_BUDGET_S = 0.05


class SimulatedFleet:
    """Simulated devices, one MQTT connection each (or through their gateway), one thread.

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
        passwords: Mapping[str, str] | None = None,
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
        self._loop = ConnectionLoop(endpoint, prefix, self, self.counters)
        passwords = passwords or {}
        for model in built.connected:
            self._loop.add(model.device_id, keepalive_s, passwords.get(model.device_id))
        self._initially_offline = [d for d in self._loop.connections
                                   if options.behaviour(d).name == "offline"]
        self._heap: list[tuple[datetime, int, str]] = []
        self._scheduled: dict[str, datetime] = {}
        self._order = itertools.count()
        self._transitions: list[tuple[datetime, int, bool, str]] = []  # (at, _, online, id)
        # Without autonomy the models never run on their own (a back-fill publishes instead).
        self._autonomous = autonomous
        self._hostile = hostile
        self._hostile_every_s = 1 / hostile_rate if hostile and hostile_rate > 0 else None
        self._next_hostile = time.monotonic()
        self.hostile_sent: dict[str, int] = {}

    # ---- life cycle (any thread) ----

    def __enter__(self) -> SimulatedFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 60.0) -> SimulatedFleet:
        """Connect every device, wait until each is subscribed, then take `offline` ones down."""
        self._loop.start()
        try:
            self._loop.wait_ready(list(self._loop.connections), timeout_s)
            if self._initially_offline:
                self.take_offline(self._initially_offline)
        except BaseException:
            self.stop()  # no loop thread left retrying behind a failed start
            raise
        return self

    def stop(self) -> None:
        """Disconnect every device with its Will (they read `offline`) and stop the loop."""
        self._loop.stop()

    # ---- what tests and commands use (any thread) ----

    def take_offline(self, device_ids: Iterable[str]) -> None:
        """Drop devices off the network; the broker publishes their Will (`offline`)."""
        ids = self._known(device_ids)
        self._loop.call(lambda: self._loop.disconnect(ids))
        self.wait_until(lambda: not any(self._loop.connections[d].connected for d in ids), 30,
                        "devices to go offline")

    def bring_online(self, device_ids: Iterable[str], timeout_s: float = 30.0) -> None:
        """Reconnect devices to their persistent sessions (queued commands then arrive)."""
        ids = self._known(device_ids)
        self._loop.call(lambda: self._loop.connect(ids))
        self._loop.wait_ready(ids, timeout_s)

    def wait_ready(self, device_ids: Iterable[str], timeout_s: float = 30.0) -> None:
        """Block until these devices are connected and subscribed to their commands."""
        self._loop.wait_ready(self._known(device_ids), timeout_s)

    def speaker_log(self, device_id: str) -> SpeakerLog:
        """A snapshot of what a simulated speaker did."""
        model = self._models[device_id]
        if not isinstance(model, SpeakerModel):
            raise TypeError(f"{device_id} is a {model.kind}, not a speaker")
        return self._loop.call(model.log.copy)

    def with_model(self, device_id: str, action: Callable[[DeviceModel, datetime], T]) -> T:
        """Run `action(model, now)` on the loop thread (to start a fault, say) and return its result."""
        model = self._models[device_id]

        def run() -> T:
            result = action(model, self.clock.now())
            self._schedule(self._owner(device_id))
            return result

        return self._loop.call(run)

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
        now = self.clock.now()
        end = now + timedelta(seconds=duration_s) if duration_s is not None else None
        self.add_faults([(d, FaultWindow(fault, now, end, ramp_s)) for d in ids])

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

        self._loop.call(clear)

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
                self._schedule(self._owner(device_id))

        self._loop.call(add)

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish messages through their devices' connections (a carried child's: its gateway's)."""

        def send() -> None:
            for message in messages:
                self._loop.publish(self._loop.connections[self._owner(message.device_id)],
                                   [message])

        self._loop.call(send)

    @property
    def outstanding(self) -> int:
        """Messages published and not yet acknowledged by the broker."""
        return self.counters.published - self.counters.acknowledged

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every message published so far has been acknowledged by the broker."""
        self.wait_until(lambda: self.outstanding <= 0, timeout_s, "PUBACKs")

    @property
    def connections(self) -> int:
        """How many MQTT connections the fleet holds when every device is up."""
        return len(self._loop.connections)

    def online(self) -> list[str]:
        """The devices connected right now."""
        return [d for d, c in self._loop.connections.items() if c.connected]

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Block until `condition()` holds; TimeoutError names what was awaited."""
        self._loop.wait_until(condition, timeout_s, what)

    def _known(self, device_ids: Iterable[str], carried_too: bool = False) -> list[str]:
        ids = list(device_ids)
        known = self._models if carried_too else self._loop.connections
        unknown = [d for d in ids if d not in known]
        if unknown:
            carried = [d for d in unknown if d in self._carrier]
            if carried:
                raise KeyError(f"{carried[0]} rides on gateway {self._carrier[carried[0]]}"
                               " and has no connection of its own")
            raise KeyError(f"not in this fleet: {', '.join(unknown[:5])}")
        return ids

    def _owner(self, device_id: str) -> str:
        """The device whose connection carries `device_id` (itself, or its gateway)."""
        return self._carrier.get(device_id, device_id)

    # ---- hooks the connection loop calls (on its thread) ----

    def tick(self) -> float:
        """Act out network faults, run due models within a time budget, send hostile messages."""
        self._run_transitions()
        behind = self._run_due_models() if self._autonomous else False
        self._send_hostile()
        if behind:
            return 0.0
        now = self.clock.now()
        waits = [1.0]
        if self._heap and self._autonomous:
            waits.append((self._heap[0][0] - now).total_seconds())
        if self._transitions:
            waits.append((self._transitions[0][0] - now).total_seconds())
        if self._hostile_every_s is not None:
            waits.append(self._next_hostile - time.monotonic())
        return max(min(waits), 0.0)

    def connected(self, connection: Connection) -> None:
        """Back on the network after the first time: nothing was measured while away."""
        if connection.connects > 1:
            self._models[connection.device_id].resume(self.clock.now())
        self._schedule(connection.device_id)

    def command(self, connection: Connection, payload: bytes) -> None:
        """Hand a command to the device's model and publish what it answers."""
        model = self._models[connection.device_id]
        self._loop.publish(connection, model.handle_command(payload, self.clock.now()))
        self._schedule(connection.device_id)

    def _schedule(self, device_id: str) -> None:
        due = self._models[device_id].next_due()
        if self._scheduled.get(device_id) != due:
            self._scheduled[device_id] = due
            heapq.heappush(self._heap, (due, next(self._order), device_id))

    def _run_due_models(self) -> bool:
        """Run what is due; True if the time budget ran out with work left."""
        now = self.clock.now()
        budget_ends = time.monotonic() + _MODEL_BUDGET_S
        while self._heap and self._heap[0][0] <= now:
            if time.monotonic() > budget_ends:
                return True
            due, _, device_id = heapq.heappop(self._heap)
            if self._scheduled.get(device_id) != due:
                continue  # superseded by a later schedule
            del self._scheduled[device_id]
            connection = self._loop.connections[device_id]
            if not connection.connected:
                continue  # a device off the network does nothing; rescheduled on connect
            self.counters.lag_s.append((now - due).total_seconds())
            self._loop.publish(connection, self._models[device_id].poll(now))
            self._schedule(device_id)
        return False

    def _run_transitions(self) -> None:
        now = self.clock.now()
        while self._transitions and self._transitions[0][0] <= now:
            _, _, online, device_id = heapq.heappop(self._transitions)
            if online:
                self._loop.connect([device_id])
            else:
                self._loop.disconnect([device_id])

    def _send_hostile(self) -> None:
        if self._hostile is None or self._hostile_every_s is None:
            return
        now = self.clock.now()
        if time.monotonic() - self._next_hostile > 1.0:
            self._next_hostile = time.monotonic()  # a stalled loop does not make up in a burst
        while self._next_hostile <= time.monotonic():
            self._next_hostile += self._hostile_every_s
            device_id, message = self._hostile.next(now)
            connection = self._loop.connections.get(self._owner(device_id))
            if connection is None or not connection.connected:
                continue
            connection.client.publish(message.topic, message.payload, qos=1)
            self.counters.published += 1
            self.hostile_sent[message.case] = self.hostile_sent.get(message.case, 0) + 1
